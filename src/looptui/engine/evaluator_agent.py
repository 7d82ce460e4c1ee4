"""The independent evaluator: a separate agent that judges an iteration in a fresh context.

It sees what a reviewer would — the goal, the checks' results, the tamper guard's flags, the
diff against the base and the executor's final message — and never the executor's
transcript. It works read-only in a checkout of the commit that would merge, with its own
instructions (not the coder's), and may open any file there: the API agents get list, read,
search, `git_diff` and `git_log` (commands only when the loop allows them); Claude Code and
Codex run with their writing tools denied. It receives the loop's `evaluator_skills` (the
shipped strict reviewer by default) as any agent of its kind does (engine/skills/delivery).
It answers with a JSON verdict citing the files and lines it relied on; each citation is
checked against the checkout, and one that does not hold (no such file, a line past its
end, a path outside) flags the verdict, so it is not done.

It fails closed: a failing check is never overruled, an answer that is not a verdict is asked
for once more and then recorded as unknown, and an evaluator that cannot answer at all
(unreachable, crashed, timed out) gives unknown too. Unknown is never "done".
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from looptui.engine.agents import Agent, AgentTask, Usage
from looptui.engine.asking import ask
from looptui.engine.evaluation import ChecksEvaluator, Evidence, tail
from looptui.engine.models import Flag, Verdict
from looptui.engine.skills.delivery import NO_SKILLS, Delivery
from looptui.engine.workspace.paths import PathEscape, confine
from looptui.words import counted

MAX_DIFF_CHARS = 60_000  # of the diff shown to the evaluator; the rest is cut, and it is told
MAX_MESSAGE_CHARS = 8_000  # of the executor's final message
MAX_CHECK_CHARS = 4_000  # of each check's output

SYSTEM_PROMPT = (
    "You are the independent evaluator of a coding agent's work: a reviewer, not a coder. "
    "You did not write the change and you must not change anything: your tools only read. "
    "Your working directory is a checkout of the commit under review; paths are relative to "
    "its root. Open the files the change touches and check the agent's claims against the "
    "code itself, then answer with the JSON verdict you are asked for, and nothing else."
)
INSTRUCTIONS = """\
You are the independent evaluator of a coding agent's work. You did not write this change.
Judge from the evidence below whether the goal is met: the change must do what the goal asks,
completely, without unrelated or harmful edits. The checks passing is necessary, not
sufficient. Do not trust the agent's own claims; check them against the diff and the code.

Answer with ONLY a JSON object, no prose around it:
{"done": true or false, "confidence": a number from 0 to 1,
 "reasons": ["why, one point per item"], "next_steps": ["what the agent must do next"],
 "citations": [{"path": "src/x.py", "line": 12}]}
In "citations", name each file and line (its line in the checkout) your verdict relies on;
a verdict of done without citations is not accepted, and a citation that does not exist in
the checkout makes the verdict void.
"""

_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


class AgentEvaluator:
    """Judges with `agent` after the checks; each answer comes from a fresh context."""

    def __init__(
        self,
        agent: Agent,
        *,
        workdir: Path,
        environ: Mapping[str, str],
        redact: Callable[[str], str] = str,
        timeout: float = 600.0,
        allow_commands: bool = False,
        skills: Delivery = NO_SKILLS,
    ) -> None:
        self.agent = agent
        self.name = agent.name
        # private to the run: scratch space, and the empty directory of a question asked
        # without a checkout
        self.workdir = workdir
        self.environ = environ
        self.redact = redact
        self.timeout = timeout
        self.allow_commands = allow_commands  # the loop's `evaluator_commands`
        self.skills = skills  # the loop's `evaluator_skills` (the strict reviewer by default)
        self.usage = Usage()  # of the last evaluation, for the run's budget

    async def evaluate(self, evidence: Evidence) -> Verdict:
        self.usage = Usage()
        if not evidence.agent_ok or not all(check.passed for check in evidence.checks):
            # a failing check or a failed turn is never overruled
            return await ChecksEvaluator().evaluate(evidence)
        prompt = evaluator_prompt(evidence, skills=self.skills.listing)
        problem = ""
        for attempt in (1, 2):
            question = prompt if attempt == 1 else f"{prompt}\n{_reminder(problem)}"
            answer, failure = await self._ask(question, evidence, attempt)
            if failure is not None:
                return unknown_verdict(self.name, f"the evaluator could not answer: {failure}")
            try:
                return parse_verdict(answer, self.name, evidence.checkout)
            except ValueError as exc:
                problem = str(exc)
        return unknown_verdict(self.name, f"the evaluator's answer was not a verdict: {problem}")

    async def _ask(self, prompt: str, evidence: Evidence, attempt: int) -> tuple[str, str | None]:
        """The evaluator's final message, or why there is none."""
        iteration = evidence.iteration
        workdir = self.workdir / f"iteration-{iteration}-{attempt}"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True, mode=0o700)
        checkout = evidence.checkout
        review = None
        if checkout is not None and evidence.base_commit and evidence.commit:
            review = (evidence.base_commit, evidence.commit)
        task = AgentTask(
            run_id=f"evaluator-{iteration}",
            iteration=iteration,
            worktree=checkout if checkout is not None else workdir,
            prompt=prompt,
            # a fresh one per question: never a conversation continued from the last
            scratch_dir=workdir.with_name(workdir.name + ".scratch"),
            environ=self.environ,
            redact=self.redact,
            system_prompt=SYSTEM_PROMPT,
            read_only=True,
            allow_commands=self.allow_commands,
            review_range=review,
            skills=self.skills.skills,
        )
        try:
            answer = await ask(self.agent, task, self.timeout)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        self.usage = Usage(
            self.usage.input_tokens + answer.usage.input_tokens,
            self.usage.output_tokens + answer.usage.output_tokens,
            self.usage.cost_usd + answer.usage.cost_usd,
        )
        return answer.text, answer.failure


def evaluator_prompt(evidence: Evidence, *, skills: str = "") -> str:
    """What the evaluator is asked: its instructions, where it is, the goal, the checks, the
    tamper guard's flags, the diff and the agent's final message; `skills` is the body of a
    "## Skills" section (the listing of an API evaluator's skills; empty: none)."""
    checks = "\n".join(
        f"- {check.name} (`{check.command}`): "
        f"{'passed' if check.passed else 'FAILED'}\n{_cut(tail(check.output, 30), MAX_CHECK_CHARS)}"
        for check in evidence.checks
    )
    if evidence.flags:
        flagged = "\n".join(f"- {flag}" for flag in evidence.flags)
        flags = (
            "The tamper guard flagged this iteration; a flagged iteration is never done. "
            "Look at each place below: was a test deleted, skipped or weakened, the test "
            "setup or a protected file changed, to make the checks pass without meeting "
            f"the goal?\n{flagged}"
        )
    else:
        flags = "(none)"
    return (
        f"{INSTRUCTIONS}\n## Where you are\n{_where(evidence)}\n\n"
        + (f"## Skills\n{skills}\n\n" if skills else "")
        + f"## Goal\n{evidence.goal.strip()}\n\n"
        f"## Checks (iteration {evidence.iteration})\n{checks or '(no checks configured)'}\n\n"
        f"## Tamper guard flags\n{flags}\n\n"
        f"## Diff against the base ({evidence.diff})\n```diff\n"
        f"{_cut(evidence.diff_text, MAX_DIFF_CHARS)}\n```\n\n"
        f"## The agent's final message\n{_cut(evidence.agent_message.strip(), MAX_MESSAGE_CHARS)}\n"
    )


def _where(evidence: Evidence) -> str:
    if evidence.checkout is None:
        return (
            "No checkout is available: your directory is empty, so judge from the diff "
            "below alone, and cite only lines you can see in it."
        )
    commit = f" of commit {evidence.commit}" if evidence.commit else ""
    base = (
        f" (the change is {evidence.base_commit}..{evidence.commit})"
        if evidence.base_commit
        else ""
    )
    return (
        f"Your working directory is a checkout{commit}, the commit that would merge{base}. "
        "Read the files you judge there; you cannot change them."
    )


def parse_verdict(answer: str, evaluator: str, checkout: Path | None = None) -> Verdict:
    """The verdict in an evaluator's answer; ValueError says what is wrong with it.

    Its citations are checked against `checkout`: one that does not hold becomes a
    `bad-citation` flag (so the verdict is not done); the others are kept in its reasons.
    Without a checkout they cannot be checked, and say so.
    """
    text = _FENCE.sub("", answer.strip())
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ValueError("no JSON object in the answer")
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError("the JSON is not an object")
    done = data.get("done")
    if not isinstance(done, bool):
        raise ValueError('"done" must be true or false')
    confidence = data.get("confidence", 0.5)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise ValueError('"confidence" must be a number from 0 to 1')
    citations = _citations(data.get("citations", []))
    if done and checkout is not None and not citations:  # "done" is evidence, cited
        raise ValueError('"done": true must cite in "citations" the files and lines it rests on')
    cited: list[str] = []
    flags: list[Flag] = []
    for path, line in citations:
        where = f"{path}:{line}" if line is not None else path
        if checkout is None:
            cited.append(f"cites {where} (not checked: no checkout)")
            continue
        problem = citation_problem(checkout, path, line)
        if problem is None:
            cited.append(f"cites {where}")
        else:
            flags.append(Flag("bad-citation", path, line, f"the evaluator cited {problem}"))
    return Verdict(
        done=done,
        evaluator=evaluator,
        confidence=min(1.0, max(0.0, float(confidence))),
        reasons=_strings(data.get("reasons", []), "reasons") + tuple(cited),
        next_steps=_strings(data.get("next_steps", []), "next_steps"),
        flags=tuple(flags),
    )


def citation_problem(checkout: Path, path: str, line: int | None) -> str | None:
    """Why a citation does not hold in `checkout` (None when it does)."""
    try:
        file = confine(checkout, path)
    except PathEscape:
        return f"{path!r}, a path outside the checkout"
    if not file.is_file():
        return f"{path}, which does not exist in the checkout"
    if line is None:
        return None
    if line < 1:
        return f"line {line} of {path}, which is not a line number"
    try:
        with file.open("rb") as handle:
            count = sum(1 for _ in handle)  # a last line without a newline counts too
    except OSError as exc:
        return f"{path}, which cannot be read ({exc.strerror or exc})"
    if line > count:
        return f"line {line} of {path}, which has {counted(count, 'line')}"
    return None


def _citations(value: object) -> list[tuple[str, int | None]]:
    """(path, line) of each citation; ValueError when they are not a list of such objects."""
    problem = '"citations" must be a list of {"path": "...", "line": n}'
    if not isinstance(value, list):
        raise ValueError(problem)
    found: list[tuple[str, int | None]] = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise ValueError(problem)
        line = item.get("line")
        if line is not None and (isinstance(line, bool) or not isinstance(line, int)):
            raise ValueError(problem)
        found.append((item["path"], line))
    return found


def unknown_verdict(evaluator: str, reason: str) -> Verdict:
    return Verdict(
        done=False,
        evaluator=evaluator,
        confidence=0.0,
        reasons=(reason,),
        next_steps=(),
        unknown=True,
    )


def _strings(value: object, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f'"{key}" must be a list of strings')
    return tuple(value)


def _reminder(problem: str) -> str:
    return (
        f"Your previous answer could not be read ({problem}). "
        "Answer again with ONLY the JSON object described above."
    )


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... {len(text) - limit} more characters not shown ...]"
