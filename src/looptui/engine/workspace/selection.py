"""The reviewer's decision on each unit of a patch, kept apart from the patch and its view."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from looptui.engine.workspace.patch import FilePatch, HunkKey, Patch

# What a unit changes, whatever its index: equal content means that taking the unit in or
# out has the same effect, so a decision on it holds in another diff that has it too (the
# whole run and its last iteration). The last item counts units of equal content.
ContentId = tuple[object, ...]


class Decision(enum.Enum):
    UNDECIDED = "undecided"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass(frozen=True)
class SelectionCounts:
    accepted: int
    rejected: int
    undecided: int


class Selection:
    """The user's decision on each unit of a patch, kept apart from the patch and its view."""

    def __init__(self, patch: Patch, carried: Mapping[ContentId, Decision] | None = None) -> None:
        """Every unit of `patch` undecided, but for those whose content `carried` decides
        (as `by_content` of a selection over another diff gives)."""
        self.patch = patch
        self._decisions = dict.fromkeys(patch.keys, Decision.UNDECIDED)
        self._ids = content_ids(patch)
        for key, content in self._ids.items():
            self._decisions[key] = (carried or {}).get(content, Decision.UNDECIDED)

    def by_content(self) -> dict[ContentId, Decision]:
        """Each unit's decision (undecided ones too), keyed by what the unit changes."""
        return {self._ids[key]: decision for key, decision in self._decisions.items()}

    def stranded(self, other: Patch) -> tuple[HunkKey, ...]:
        """The rejected units whose change `other` does not hold as one unit of its own (a
        hunk of the last iteration inside a larger hunk of the whole run): a selection over
        `other` cannot carry their rejection."""
        held = set(content_ids(other).values())
        return tuple(key for key in self.rejected() if self._ids[key] not in held)

    def decision(self, key: HunkKey) -> Decision:
        return self._decisions[key]

    def decide(self, key: HunkKey, decision: Decision) -> None:
        if key not in self._decisions:
            raise KeyError(key)
        self._decisions[key] = decision

    def accept(self, key: HunkKey) -> None:
        self.decide(key, Decision.ACCEPTED)

    def reject(self, key: HunkKey) -> None:
        self.decide(key, Decision.REJECTED)

    def reset(self, key: HunkKey) -> None:
        self.decide(key, Decision.UNDECIDED)

    def decide_file(self, file: FilePatch, decision: Decision) -> None:
        for key in file.keys:
            self.decide(key, decision)

    def accept_file(self, file: FilePatch) -> None:
        self.decide_file(file, Decision.ACCEPTED)

    def reject_file(self, file: FilePatch) -> None:
        self.decide_file(file, Decision.REJECTED)

    def decide_all(self, decision: Decision) -> None:
        for key in self._decisions:
            self._decisions[key] = decision

    def file_decision(self, file: FilePatch) -> Decision | None:
        """The decision shared by every unit of `file`; None when they differ."""
        decisions = {self._decisions[key] for key in file.keys}
        return decisions.pop() if len(decisions) == 1 else None

    def keys_with(self, decision: Decision) -> tuple[HunkKey, ...]:
        """The keys with `decision`, in diff order."""
        return tuple(key for key, value in self._decisions.items() if value is decision)

    def accepted(self) -> tuple[HunkKey, ...]:
        return self.keys_with(Decision.ACCEPTED)

    def rejected(self) -> tuple[HunkKey, ...]:
        return self.keys_with(Decision.REJECTED)

    def undecided(self) -> tuple[HunkKey, ...]:
        return self.keys_with(Decision.UNDECIDED)

    def counts(self) -> SelectionCounts:
        values = list(self._decisions.values())
        return SelectionCounts(
            values.count(Decision.ACCEPTED),
            values.count(Decision.REJECTED),
            values.count(Decision.UNDECIDED),
        )

    @property
    def all_decided(self) -> bool:
        return Decision.UNDECIDED not in self._decisions.values()


def content_ids(patch: Patch) -> dict[HunkKey, ContentId]:
    """Each unit of `patch` by what it changes: its files' paths and kind of change, and
    its hunks' lines (context included) or, for a file taken whole, its binary data."""
    ids: dict[HunkKey, ContentId] = {}
    seen: dict[ContentId, int] = {}
    for key in patch.keys:
        parts: list[object] = []
        for file in patch.files_of(key):
            parts.append((file.old_path, file.new_path))
            if key == file.file_key:
                parts.append((file.status, file.old_mode, file.new_mode, file.binary_patch))
            parts += [
                tuple((line.kind, line.text, line.missing_newline) for line in hunk.lines)
                for hunk in file.hunks
                if hunk.key == key
            ]
        content = tuple(parts)
        seen[content] = seen.get(content, 0) + 1
        ids[key] = (*content, seen[content])
    return ids
