"""Seeing and steering the schedule, as the engine offers it: fire a loop now, pause and
resume its triggers, and the loops' state with their last firings.

In the service, the engine's firings are its scheduler's, which also fires the triggers by
themselves. With no service, `fire` still takes the one firing path (ledger, policy,
preconditions), and pausing writes the stored schedule that the next service reads.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from looptui.engine.errors import LooptuiError
from looptui.engine.store.ledger import Firing
from looptui.engine.triggers.clock import SystemClock
from looptui.engine.triggers.firings import MANUAL, Firings
from looptui.engine.triggers.overview import LoopState, loop_states

if TYPE_CHECKING:
    from looptui.engine.config import Config, LoopConfig
    from looptui.engine.store import Store


class TriggerControl:
    """The engine's half that talks to its firings (see `Engine`)."""

    config: Config | None
    store: Store
    firings: Firings | None

    async def _firings(self, follow: bool = True) -> Firings:
        """The engine's firings: the service's scheduler, or (no service) ones made on
        demand, which fire only when asked and follow the runs they start."""
        if self.firings is None:
            self.firings = Firings(self, SystemClock())  # type: ignore[arg-type]
        if follow and not self.firings.following:
            await self.firings.start(drain=False)  # no queue drains in a passing command
        return self.firings

    async def fire(self, loop_name: str) -> Firing:
        """Fire `loop_name` now, as a trigger would: recorded in the ledger, decided by its
        policy and its preconditions. Returns the firing once decided."""
        firings = await self._firings()
        return await firings.fire(loop_name, MANUAL)

    async def pause(self, loop_name: str, trigger: str | None = None) -> list[str]:
        """Pause a loop's trigger (or all of them); returns the names paused."""
        return await (await self._firings(follow=False)).pause(loop_name, trigger)

    async def unpause(self, loop_name: str, trigger: str | None = None) -> list[str]:
        """Resume a loop's paused trigger (or all of them), scheduled from now; returns the
        names resumed."""
        return await (await self._firings(follow=False)).unpause(loop_name, trigger)

    async def firing_history(self, loop_name: str | None = None, limit: int = 50) -> list[Firing]:
        """The ledger's newest firings, of one loop or all, newest first."""
        if loop_name is not None:
            self._require_loop(loop_name)
        return await self.store.firings(loop_name, limit)

    async def loops(self) -> list[LoopState]:
        """Every configured loop with its triggers, next fire times and last firings."""
        active = []
        for run in await self.store.runs():
            if run.status.is_active:
                active.append((run.id, run.loop))
        return await loop_states(
            self.config,
            self.store,
            time.time(),
            scheduled=bool(self.firings and self.firings.timed),
            active=active,
        )

    def _require_loop(self, loop_name: str) -> LoopConfig:
        if self.config is None:
            raise LooptuiError("no configuration loaded")
        return self.config.loop(loop_name)
