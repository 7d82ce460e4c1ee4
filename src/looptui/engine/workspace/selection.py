"""The reviewer's decision on each unit of a patch, kept apart from the patch and its view."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from looptui.engine.workspace.patch import FilePatch, HunkKey, Patch


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

    def __init__(self, patch: Patch) -> None:
        self.patch = patch
        self._decisions = dict.fromkeys(patch.keys, Decision.UNDECIDED)

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
