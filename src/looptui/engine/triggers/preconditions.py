"""Before a firing spends an agent turn: is there anything to do?

Two questions, both asked on a clean checkout of the base commit the run would start from
(never the user's checkout, whose uncommitted state the run would not see):

- the loop's `when` commands, in order: each must exit 0 for the run to start. An exit of
  1 to 125 means "nothing to do"; a command that cannot run (126, 127) or times out is an
  error, so that a broken precondition fails visibly instead of idling for ever.
- for a goal loop (one with checks and no evaluator), the checks themselves: if they already
  pass at the base, the goal holds and no agent is needed. With an evaluator the checks are
  only part of the goal, so they do not decide alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from looptui.engine.checks import run_check
from looptui.engine.config import CheckConfig, LoopConfig
from looptui.engine.errors import LooptuiError
from looptui.engine.verification.clean_gate import CleanCheckouts, run_gate

WHEN_TIMEOUT = 60.0  # seconds: a precondition is meant to be cheap
CANNOT_RUN = (126, 127)  # the shell's statuses for a command it could not run or find


def asks_the_base(loop: LoopConfig) -> bool:
    """Whether a firing of `loop` asks anything of its base before it starts a run."""
    return bool(loop.when) or bool(loop.checks and loop.evaluator is None)


async def nothing_to_do(
    loop: LoopConfig,
    base_commit: str,
    checkouts: CleanCheckouts,
    environ: Mapping[str, str],
    payload: Mapping[str, Any],
) -> str | None:
    """Why the firing has nothing to do, or None when a run should start. Raises
    LooptuiError when a `when` command cannot run or times out."""
    if not asks_the_base(loop):
        return None
    environ = {**environ, **_payload_variables(payload)}
    async with checkouts.claim(base_commit, loop.setup) as slot:
        for index, command in enumerate(loop.when, 1):
            check = CheckConfig(name=f"when {index}", run=command, timeout=WHEN_TIMEOUT)
            result = await run_check(check, slot, environ)
            if result.timed_out:
                raise LooptuiError(
                    f"the `when` command {command!r} timed out after {WHEN_TIMEOUT:g}s"
                )
            if result.exit_code in CANNOT_RUN:
                raise LooptuiError(
                    f"the `when` command {command!r} could not run (exit {result.exit_code}): "
                    f"{_last_line(result.output)}"
                )
            if not result.passed:
                said = _last_line(result.output)
                return f"`{command}` exited {result.exit_code}" + (f": {said}" if said else "")
        if loop.checks and loop.evaluator is None:
            gate = await run_gate(checkouts, slot, base_commit, loop.checks, loop.setup, environ)
            if gate.passed:
                return f"the goal already holds at {base_commit[:12]}: every check passes"
    return None


def _payload_variables(payload: Mapping[str, Any]) -> dict[str, str]:
    """What fired the loop, for a `when` command to look at."""
    paths = payload.get("changed_paths") or ()
    commit = payload.get("commit") or {}
    variables = {
        "LOOPTUI_FIRED_BY": str(payload.get("fired_by") or ""),
        "LOOPTUI_CHANGED_PATHS": "\n".join(str(path) for path in paths),
    }
    if isinstance(commit, Mapping) and commit.get("sha"):
        variables["LOOPTUI_COMMIT"] = str(commit["sha"])
    return variables


def _last_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1].strip()[:200] if lines else ""
