"""The prompt of each iteration: the loop's goal plus what the run, and the accepted memory
of earlier runs of its loop, have learned so far."""

from __future__ import annotations

from collections.abc import Sequence

from looptui.engine.evaluation import tail
from looptui.engine.models import CheckResult, Note, NoteKind, NoteStatus, Verdict

_FAILING_OUTPUT_LINES = 40
# Well under Linux's 128 KiB limit on one argument, for agents given the prompt as {prompt}.
MAX_PROMPT_CHARS = 100_000


def build_prompt(
    goal: str,
    iteration: int,
    notes: Sequence[Note],
    failing_checks: Sequence[CheckResult],
    last_verdict: Verdict | None,
    limit: int = MAX_PROMPT_CHARS,
    remembered: Sequence[Note] = (),
    *,
    skills: str = "",
) -> str:
    """The human's feedback (when a review continues the run), the loop's prompt, what
    earlier runs of the loop learned (`remembered`: accepted notes, most useful first), then
    earlier notes, failing checks and the last verdict's next steps.

    `skills` is the body of a "## Skills" section after the goal (the loop's skills listed
    for an agent that has the skill tools: `engine.skills.delivery.listing_text`).

    Past `limit` characters, the checks' output is cut to its end (where failures are
    explained), then the oldest notes go, then the least useful remembered ones, so that the
    goal and the feedback always fit.
    """
    history, feedback = _split_notes(notes)
    memory = list(remembered)
    output_chars = limit
    while True:
        prompt = _assemble(
            goal,
            iteration,
            history,
            feedback,
            failing_checks,
            last_verdict,
            output_chars,
            memory,
            skills=skills,
        )
        if len(prompt) <= limit:
            return prompt
        if output_chars > limit // 5:
            output_chars //= 2
        elif len(history) > 1:
            history = history[len(history) // 2 :]  # the newer half
        elif memory:
            memory = memory[: len(memory) // 2]  # the more useful half
        elif output_chars > 200:
            output_chars //= 2
        else:
            return prompt[: limit - 40] + "\n[looptui: the prompt was cut here]\n"


def _split_notes(notes: Sequence[Note]) -> tuple[list[Note], list[Note]]:
    """(history, the human's last feedback): it leads every prompt after it, the iterations
    that have not yet done what it asks included. A lesson still proposed is left out: no
    prompt carries a lesson the human has not accepted, its own run's neither."""
    given = [note.iteration for note in notes if note.kind is NoteKind.FEEDBACK]
    latest = max(given, default=None)
    feedback = [n for n in notes if n.kind is NoteKind.FEEDBACK and n.iteration == latest]
    history = [n for n in notes if n not in feedback and n.status is not NoteStatus.PROPOSED]
    return history, feedback


def _assemble(
    goal: str,
    iteration: int,
    history: Sequence[Note],
    feedback: Sequence[Note],
    failing_checks: Sequence[CheckResult],
    last_verdict: Verdict | None,
    output_chars: int,
    remembered: Sequence[Note] = (),
    *,
    skills: str = "",
) -> str:
    parts = []
    if feedback:  # the human's word leads: it is why this iteration exists
        lines = [f"- {note.text}" for note in feedback]
        parts.append(
            "## Feedback from the human reviewing your work (address it first)\n" + "\n".join(lines)
        )
    parts.append(goal.strip())
    if feedback or iteration > 1:
        parts.append(f"This is iteration {iteration}. {_where(iteration, feedback, last_verdict)}")
    if skills:
        parts.append(f"## Skills\n{skills}")
    if remembered:
        lines = [_remembered_line(note) for note in remembered]
        parts.append(
            "## What earlier runs of this loop learned (notes accepted for this loop)\n"
            + "\n".join(lines)
        )
    if history:
        last = history[-1]
        lines = [
            f"- iteration {note.iteration} ({note.kind}): "
            + (_indented(note.text) if note is last else note.text.splitlines()[0])
            for note in history
            if note.text.strip()
        ]
        parts.append("## Notes from earlier iterations\n" + "\n".join(lines))
    if failing_checks:
        blocks = []
        share = max(100, output_chars // len(failing_checks))
        for check in failing_checks:
            status = "timed out" if check.timed_out else f"exit {check.exit_code}"
            output = tail(check.output, _FAILING_OUTPUT_LINES)[-share:]
            blocks.append(f"### {check.name}: `{check.command}` ({status})\n```\n{output}\n```")
        parts.append("## Failing checks\n" + "\n\n".join(blocks))
    if last_verdict and last_verdict.flags:
        flagged = "\n".join(f"- {str(flag)[:500]}" for flag in last_verdict.flags)
        parts.append(
            "## The tamper guard flagged your last change, so it was not accepted\n"
            "Restore what these point at and reach the goal by fixing the code (new tests "
            "next to a fix are welcome):\n" + flagged
        )
    if last_verdict and last_verdict.next_steps:
        steps = "\n".join(f"- {step[:2000]}" for step in last_verdict.next_steps)
        parts.append("## Next steps from the last verdict\n" + steps)
    return "\n\n".join(parts) + "\n"


def _where(iteration: int, feedback: Sequence[Note], last_verdict: Verdict | None) -> str:
    """What is true of the iterations before this one: whether the last met the goal, and
    what the human asked after it (`last_verdict` is the previous iteration's, when known)."""
    met = last_verdict is not None and last_verdict.done
    if not feedback:
        return (
            "The last iteration met the goal."
            if met
            else ("Earlier iterations did not reach the goal.")
        )
    reviewed = feedback[0].iteration
    if iteration > reviewed + 1:
        return (
            f"The human reviewed the work of iteration {reviewed} and asks for the changes "
            "above; the iterations since have not yet reached the goal."
        )
    if met:
        return (
            "The last iteration met the goal; the human reviewed its work and asks for more: "
            "the changes above."
        )
    if last_verdict is None:
        return (
            "The human reviewed the work of the earlier iterations and asks for the changes above."
        )
    return (
        "The last iteration did not reach the goal; the human reviewed the work and asks for "
        "the changes above."
    )


def _indented(text: str) -> str:
    """A note of several lines, as one list item: its later lines indented under it."""
    return "\n  ".join(line for line in text.strip().splitlines() if line.strip())


def _remembered_line(note: Note) -> str:
    seen = f", seen in {note.seen} runs" if note.seen > 1 else ""
    where = f"note #{note.id}, from run {note.run_id}{seen}"
    return f"- ({where}) {_indented(note.text)}"
