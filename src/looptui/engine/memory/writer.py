"""The loop's checkpoint-writer agent: after an iteration, it writes the checkpoint note from
the iteration's evidence, reading the worktree if it likes, and changing nothing there.

It is given the checkpoint looptui built (`checkpoint.py`) as its material; an answer that
is empty, too long or no answer at all gives that built one back, saying why, so a note is
never missing and never unsupported by the evidence."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from looptui.engine.agents import Agent, AgentTask, Usage
from looptui.engine.asking import ask

MAX_NOTE_CHARS = 4_000
INSTRUCTIONS = """\
You write the checkpoint note of one iteration of a coding agent's work, for whoever works
on the goal next (an agent without this conversation, or a human). Answer with the note
only, in at most 15 short lines, under these headings, each line a fact from the evidence
below or from the files in your working directory (the run's worktree; change nothing):
Progress: what now works, and what the checks and the verdict say.
Tried: what this iteration changed and why.
Problems: what failed, quoting the failing line.
Next steps: what to do next, most important first.
Never claim what the evidence does not show.
"""


class CheckpointWriter:
    """Asks `agent` for each checkpoint, each time in a fresh context."""

    def __init__(
        self,
        agent: Agent,
        *,
        workdir: Path,
        environ: Mapping[str, str],
        redact: Callable[[str], str] = str,
        timeout: float = 300.0,
        instructions: str = INSTRUCTIONS,
    ) -> None:
        self.agent = agent
        self.name = agent.name
        self.workdir = workdir
        self.environ = environ
        self.redact = redact
        self.timeout = timeout
        self.instructions = instructions
        self.usage = Usage()  # of the last note, for the run's budget

    async def write(
        self, goal: str, built: str, worktree: Path, run_id: str, iteration: int
    ) -> tuple[str, str | None]:
        """(the note, why the writer's own note was not used: None when it was)."""
        prompt = (
            f"{self.instructions}\n## Goal\n{goal.strip()}\n\n"
            f"## What looptui recorded of iteration {iteration}\n{built}\n"
        )
        scratch = self.workdir / f"iteration-{iteration}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True, mode=0o700)
        task = AgentTask(
            run_id=f"checkpoint-{run_id}-{iteration}",
            iteration=iteration,
            worktree=worktree,
            prompt=prompt,
            scratch_dir=scratch,
            environ=self.environ,
            redact=self.redact,
            read_only=True,
            allow_commands=False,
        )
        try:
            answer = await ask(self.agent, task, self.timeout)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self.usage = answer.usage
        text = answer.text.strip()
        if answer.failure is not None:
            return built, f"the checkpoint writer {self.name} gave no note: {answer.failure}"
        if not text:
            return built, f"the checkpoint writer {self.name} answered nothing"
        if len(text) > MAX_NOTE_CHARS:
            text = text[:MAX_NOTE_CHARS].rstrip() + "\n[looptui: the note was cut here]"
        return text, None
