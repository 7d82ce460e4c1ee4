"""The independent evaluator: a separate agent that judges an iteration in a fresh context.

It sees what a reviewer would — the goal, the checks' results, the diff against the base and
the executor's final message — and never the executor's transcript. It answers with a JSON
verdict. It fails closed: a failing check is never overruled, an answer that is not a verdict
is asked for once more and then recorded as unknown, and an evaluator that cannot answer at
all (unreachable, crashed, timed out) gives unknown too. Unknown is never "done".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from looptui.engine.agents import Agent, AgentError, AgentTask, Finished, Text, Usage
from looptui.engine.evaluation import ChecksEvaluator, Evidence, tail
from looptui.engine.models import Verdict

MAX_DIFF_CHARS = 60_000  # of the diff shown to the evaluator; the rest is cut, and it is told
MAX_MESSAGE_CHARS = 8_000  # of the executor's final message
MAX_CHECK_CHARS = 4_000  # of each check's output

INSTRUCTIONS = """\
You are the independent evaluator of a coding agent's work. You did not write this change.
Judge from the evidence below whether the goal is met: the change must do what the goal asks,
completely, without unrelated or harmful edits. The checks passing is necessary, not
sufficient. Do not trust the agent's own claims; check them against the diff.

Answer with ONLY a JSON object, no prose around it:
{"done": true or false, "confidence": a number from 0 to 1,
 "reasons": ["why, one point per item"], "next_steps": ["what the agent must do next"]}
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
    ) -> None:
        self.agent = agent
        self.name = agent.name
        self.workdir = workdir  # private to the run; each question gets an empty directory in it
        self.environ = environ
        self.redact = redact
        self.timeout = timeout
        self.usage = Usage()  # of the last evaluation, for the run's budget

    async def evaluate(self, evidence: Evidence) -> Verdict:
        self.usage = Usage()
        if not evidence.agent_ok or not all(check.passed for check in evidence.checks):
            # a failing check or a failed turn is never overruled
            return await ChecksEvaluator().evaluate(evidence)
        prompt = evaluator_prompt(evidence)
        problem = ""
        for attempt in (1, 2):
            question = prompt if attempt == 1 else f"{prompt}\n{_reminder(problem)}"
            answer, failure = await self._ask(question, evidence.iteration, attempt)
            if failure is not None:
                return unknown_verdict(self.name, f"the evaluator could not answer: {failure}")
            try:
                return parse_verdict(answer, self.name)
            except ValueError as exc:
                problem = str(exc)
        return unknown_verdict(self.name, f"the evaluator's answer was not a verdict: {problem}")

    async def _ask(self, prompt: str, iteration: int, attempt: int) -> tuple[str, str | None]:
        """The evaluator's final message, or why there is none."""
        workdir = self.workdir / f"iteration-{iteration}-{attempt}"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True, mode=0o700)
        task = AgentTask(
            run_id=f"evaluator-{iteration}",
            iteration=iteration,
            worktree=workdir,
            prompt=prompt,
            scratch_dir=workdir.with_name(workdir.name + ".scratch"),
            environ=self.environ,
            redact=self.redact,
        )
        texts: list[str] = []
        errors: list[str] = []
        finished: Finished | None = None
        try:
            async with asyncio.timeout(self.timeout):
                async with contextlib.aclosing(self.agent.run(task)) as events:
                    async for event in events:
                        match event:
                            case Text(text=text):
                                texts.append(text)
                            case Usage() as usage:
                                self.usage = Usage(
                                    self.usage.input_tokens + usage.input_tokens,
                                    self.usage.output_tokens + usage.output_tokens,
                                    self.usage.cost_usd + usage.cost_usd,
                                )
                            case AgentError(message=message):
                                errors.append(message)
                            case Finished() as done:
                                finished = done
        except TimeoutError:
            return "", f"no answer within {self.timeout:g}s"
        except Exception as exc:  # whatever broke, the verdict is unknown, never a failed run
            return "", f"{type(exc).__name__}: {exc}"
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        if finished is None or not finished.ok:
            reason = errors[-1] if errors else (finished.message if finished else "")
            return "", tail(reason, 1) or "its turn failed"
        return finished.message or "\n".join(texts), None


def evaluator_prompt(evidence: Evidence) -> str:
    checks = "\n".join(
        f"- {check.name} (`{check.command}`): "
        f"{'passed' if check.passed else 'FAILED'}\n{_cut(tail(check.output, 30), MAX_CHECK_CHARS)}"
        for check in evidence.checks
    )
    return (
        f"{INSTRUCTIONS}\n## Goal\n{evidence.goal.strip()}\n\n"
        f"## Checks (iteration {evidence.iteration})\n{checks or '(no checks configured)'}\n\n"
        f"## Diff against the base ({evidence.diff})\n```diff\n"
        f"{_cut(evidence.diff_text, MAX_DIFF_CHARS)}\n```\n\n"
        f"## The agent's final message\n{_cut(evidence.agent_message.strip(), MAX_MESSAGE_CHARS)}\n"
    )


def parse_verdict(answer: str, evaluator: str) -> Verdict:
    """The verdict in an evaluator's answer; ValueError says what is wrong with it."""
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
    return Verdict(
        done=done,
        evaluator=evaluator,
        confidence=min(1.0, max(0.0, float(confidence))),
        reasons=_strings(data.get("reasons", []), "reasons"),
        next_steps=_strings(data.get("next_steps", []), "next_steps"),
    )


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
