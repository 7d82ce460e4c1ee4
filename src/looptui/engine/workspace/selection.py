"""The reviewer's decision on each unit of a patch, kept apart from the patch and its view.

A hunk can also be decided line by line (as lazygit stages lines): it is then accepted but
for the changed lines rejected in it, which `rejected_patch` leaves out of what lands.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from looptui.engine.models import (  # records: the protocol carries them
    Decision,
    KeptDecision,
    ReviewTally,
)
from looptui.engine.workspace.git_diff import build_patch
from looptui.engine.workspace.patch import FilePatch, Hunk, HunkKey, Patch

# What a unit changes, whatever its index: equal content means that taking the unit in or
# out has the same effect, so a decision on it holds in another diff that has it too (the
# whole run and its last iteration). The last item counts units of equal content.
ContentId = tuple[object, ...]

__all__ = [
    "ContentId",
    "Decision",
    "KeptDecision",
    "Selection",
    "SelectionCounts",
    "shown_in",
]


@dataclass(frozen=True)
class SelectionCounts:
    accepted: int  # hunks accepted, whole or but for some lines
    rejected: int
    undecided: int
    rejected_lines: int = 0  # the lines rejected inside accepted hunks


class Selection:
    """The user's decision on each unit of a patch, kept apart from the patch and its view."""

    def __init__(
        self,
        patch: Patch,
        carried: Mapping[ContentId, Decision] | None = None,
        carried_lines: Mapping[ContentId, frozenset[int]] | None = None,
    ) -> None:
        """Every unit of `patch` undecided, but for those whose content `carried` decides
        (as `by_content` of a selection over another diff gives), with the lines rejected
        inside them that `carried_lines` (`lines_by_content`) names."""
        self.patch = patch
        self._decisions = dict.fromkeys(patch.keys, Decision.UNDECIDED)
        self._lines: dict[HunkKey, frozenset[int]] = {}  # rejected lines of accepted hunks
        self._ids = content_ids(patch)
        self._hunks = {hunk.key: hunk for file in patch.files if file.split for hunk in file.hunks}
        for key, content in self._ids.items():
            self._decisions[key] = (carried or {}).get(content, Decision.UNDECIDED)
            lines = (carried_lines or {}).get(content)
            if lines and self._decisions[key] is Decision.ACCEPTED and key in self._hunks:
                self._lines[key] = frozenset(lines).intersection(self._hunks[key].changed)

    def by_content(self) -> dict[ContentId, Decision]:
        """Each unit's decision (undecided ones too), keyed by what the unit changes."""
        return {self._ids[key]: decision for key, decision in self._decisions.items()}

    def lines_by_content(self) -> dict[ContentId, frozenset[int]]:
        """The lines rejected inside accepted hunks, keyed by what the hunk changes."""
        return {self._ids[key]: lines for key, lines in self._lines.items()}

    def stranded(self, other: Patch) -> tuple[HunkKey, ...]:
        """The units with something rejected whose change `other` does not hold as one unit
        of its own (a hunk of the last iteration inside a larger hunk of the whole run): a
        selection over `other` cannot carry their rejection."""
        held = set(content_ids(other).values())
        keys = dict.fromkeys((*self.rejected(), *self._lines))
        return tuple(key for key in keys if self._ids[key] not in held)

    def decision(self, key: HunkKey) -> Decision:
        return self._decisions[key]

    def decide(self, key: HunkKey, decision: Decision) -> None:
        """Decide the unit whole (any lines rejected inside it are taken back)."""
        if key not in self._decisions:
            raise KeyError(key)
        self._decisions[key] = decision
        self._lines.pop(key, None)

    # -- line by line ----------------------------------------------------------------------

    def line_hunk(self, key: HunkKey) -> Hunk | None:
        """The hunk whose lines `key` may decide one by one; None for a unit taken whole (a
        binary or added file, a rename itself...)."""
        return self._hunks.get(key)

    def rejected_lines(self, key: HunkKey) -> frozenset[int]:
        """The changed lines (indexes into the hunk's `lines`) that do not land with `key`."""
        if self._decisions.get(key) is Decision.REJECTED and key in self._hunks:
            return frozenset(self._hunks[key].changed)
        return self._lines.get(key, frozenset())

    def decide_lines(self, key: HunkKey, rejected: frozenset[int]) -> None:
        """Accept the hunk `key` but for the changed lines in `rejected`; every line rejected
        is the hunk rejected."""
        hunk = self._hunks.get(key)
        if hunk is None:
            raise KeyError(f"{key} is not a hunk that can be decided line by line")
        changed = frozenset(hunk.changed)
        unknown = rejected - changed
        if unknown:
            raise KeyError(f"not a changed line of {key}: {sorted(unknown)}")
        if rejected == changed:
            self.decide(key, Decision.REJECTED)
            return
        self.decide(key, Decision.ACCEPTED)
        if rejected:
            self._lines[key] = rejected

    def toggle_line(self, key: HunkKey, index: int) -> None:
        """Reject the changed line `index` of hunk `key` if it lands, accept it if not."""
        self.decide_lines(key, self.rejected_lines(key) ^ {index})

    def rejected_patch(self) -> str | None:
        """What review leaves out, as a patch for `Repository.revert_hunks` (reversed): the
        rejected units and the lines rejected inside accepted hunks; None when nothing is."""
        rejected = self.rejected()
        if not rejected and not self._lines:
            return None
        keys = (*rejected, *self._lines)
        return build_patch(self.patch, keys, reverse=True, lines=self._lines) or None

    # -- kept between sessions --------------------------------------------------------------

    def to_data(self, shown: Collection[HunkKey] = ()) -> list[KeptDecision]:
        """The decisions taken, keyed by content digests, to keep (`from_data`), with the
        units `shown` under the review cursor (kept even undecided, for `shown_in`)."""
        return [
            KeptDecision(
                digest(self._ids[key]),
                decision,
                tuple(sorted(self._lines.get(key, ()))),
                shown=key in shown,
            )
            for key, decision in self._decisions.items()
            if decision is not Decision.UNDECIDED or key in shown
        ]

    @classmethod
    def from_data(cls, patch: Patch, data: Sequence[KeptDecision]) -> Selection:
        """A selection over `patch` with the decisions of `to_data` whose units it holds
        unchanged; a unit changed since (the run went on) is undecided again."""
        by_digest = {entry.unit: entry for entry in data}
        decisions: dict[ContentId, Decision] = {}
        lines: dict[ContentId, frozenset[int]] = {}
        for content in content_ids(patch).values():
            entry = by_digest.get(digest(content))
            if entry is None or entry.decision is Decision.UNDECIDED:  # kept as shown only
                continue
            decisions[content] = entry.decision
            lines[content] = frozenset(entry.lines)
        return cls(patch, decisions, lines)

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
        self._lines.clear()

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
            sum(len(lines) for lines in self._lines.values()),
        )

    @property
    def all_decided(self) -> bool:
        return Decision.UNDECIDED not in self._decisions.values()

    def tally(self, shown: Collection[HunkKey] = ()) -> ReviewTally:
        """How much of the patch review covered: its units and changed lines, those decided,
        those `shown` on screen, and those neither (which land unread)."""
        sizes = {key: 0 for key in self._decisions}
        for file in self.patch.files:
            for hunk in file.hunks:
                sizes[hunk.key] += hunk.added + hunk.removed
        decided = [key for key, value in self._decisions.items() if value is not Decision.UNDECIDED]
        seen = [key for key in sizes if key in shown]
        unread = [key for key in sizes if key not in shown and key not in decided]
        return ReviewTally(
            hunks=len(sizes),
            lines=sum(sizes.values()),
            decided_hunks=len(decided),
            decided_lines=sum(sizes[key] for key in decided),
            shown_hunks=len(seen),
            shown_lines=sum(sizes[key] for key in seen),
            unread_hunks=len(unread),
            unread_lines=sum(sizes[key] for key in unread),
        )


def shown_in(patch: Patch, data: Sequence[KeptDecision]) -> frozenset[HunkKey]:
    """The units of `patch` that `data` (`Selection.to_data`) keeps as shown under the
    review cursor; a unit changed since is not."""
    kept = {entry.unit for entry in data if entry.shown}
    return frozenset(key for key, content in content_ids(patch).items() if digest(content) in kept)


def digest(content: ContentId) -> str:
    """A stable name for a unit's content, to store its decision under."""
    return hashlib.sha256(repr(content).encode("utf-8", "surrogateescape")).hexdigest()[:32]


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
