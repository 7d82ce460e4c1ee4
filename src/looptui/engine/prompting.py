"""The prompt of each iteration: the loop's goal plus what the run has learned so far."""

from __future__ import annotations

from collections.abc import Sequence

from looptui.engine.evaluation import tail
from looptui.engine.models import CheckResult, Note, NoteKind, Verdict

_FAILING_OUTPUT_LINES = 40


def build_prompt(
    goal: str,
    iteration: int,
    notes: Sequence[Note],
    failing_checks: Sequence[CheckResult],
    last_verdict: Verdict | None,
) -> str:
    """The loop's prompt, then earlier notes, failing checks and the last verdict's next steps."""
    parts = [goal.strip()]
    if iteration > 1:
        parts.append(f"This is iteration {iteration}. Earlier iterations did not reach the goal.")
    latest = max((note.iteration for note in notes), default=0)
    feedback = [n for n in notes if n.kind is NoteKind.FEEDBACK and n.iteration == latest]
    history = [note for note in notes if note not in feedback]
    if history:
        lines = [f"- iteration {note.iteration} ({note.kind}): {note.text}" for note in history]
        parts.append("## Notes from earlier iterations\n" + "\n".join(lines))
    if feedback:
        lines = [f"- {note.text}" for note in feedback]
        parts.append(
            "## Feedback from the human reviewing your work (address it first)\n" + "\n".join(lines)
        )
    if failing_checks:
        blocks = []
        for check in failing_checks:
            status = "timed out" if check.timed_out else f"exit {check.exit_code}"
            blocks.append(
                f"### {check.name}: `{check.command}` ({status})\n"
                f"```\n{tail(check.output, _FAILING_OUTPUT_LINES)}\n```"
            )
        parts.append("## Failing checks\n" + "\n\n".join(blocks))
    if last_verdict and last_verdict.next_steps:
        steps = "\n".join(f"- {step}" for step in last_verdict.next_steps)
        parts.append("## Next steps from the last verdict\n" + steps)
    return "\n\n".join(parts) + "\n"
