"""The review's half of `RemoteSupervisor`: a run's diff, its kept review decisions, and its
work landed or dropped, each one typed command to the service."""

from __future__ import annotations

from collections.abc import Sequence

from looptui.client.remote_calls import RemoteCalls
from looptui.engine.landing import MergePlan
from looptui.engine.models import ReviewTally
from looptui.engine.workspace import KeptDecision, Patch, parse_patch
from looptui.protocol.commands import (
    DiffScope,
    Discard,
    GetDiff,
    GetReviewDecisions,
    GetReviewDiff,
    Merge,
    PreviewMerge,
    SaveReviewDecisions,
)


class RemoteReview(RemoteCalls):
    """`Supervisor`'s review calls over the socket (mixed into `RemoteSupervisor`)."""

    async def merge(
        self,
        prefix: str,
        squash: bool = False,
        reject: str | None = None,
        force: bool = False,
        review: ReviewTally | None = None,
    ) -> str:
        return await self.call(Merge(prefix, squash, reject, force, review), str)

    async def preview(self, prefix: str, reject: str | None = None) -> MergePlan:
        return await self.call(PreviewMerge(prefix, reject), MergePlan)

    async def discard(self, prefix: str, force: bool = False) -> None:
        await self.call(Discard(prefix, force), type(None))

    async def diff(self, prefix: str, color: bool = False) -> str:
        return await self.call(GetDiff(prefix, color), str)

    async def patch(self, prefix: str, scope: DiffScope = "run") -> Patch:
        return parse_patch(await self.call(GetReviewDiff(prefix, scope), str))

    async def review_decisions(self, prefix: str) -> list[KeptDecision]:
        return await self.call(GetReviewDecisions(prefix), list[KeptDecision])

    async def save_review_decisions(self, prefix: str, decisions: Sequence[KeptDecision]) -> None:
        await self.call(SaveReviewDecisions(prefix, tuple(decisions)), type(None))


__all__ = ["RemoteReview"]
