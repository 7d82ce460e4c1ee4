"""One question to an agent, in a fresh context, for its final answer: how the evaluator
and the checkpoint writer ask theirs."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from looptui.engine.agents import Agent, AgentError, AgentTask, Finished, Text, Usage
from looptui.engine.evaluation import tail


@dataclass
class Answer:
    text: str = ""
    failure: str | None = None  # why there is no answer (then `text` is empty)
    usage: Usage = field(default_factory=Usage)


async def ask(agent: Agent, task: AgentTask, within: float) -> Answer:
    """The agent's final message for `task`, or why there is none; never raises for what
    the agent did (crashed, timed out, answered nothing)."""
    answer = Answer()
    texts: list[str] = []
    errors: list[str] = []
    finished: Finished | None = None
    try:
        async with asyncio.timeout(within):
            async with contextlib.aclosing(agent.run(task)) as events:
                async for event in events:
                    match event:
                        case Text(text=text):
                            texts.append(text)
                        case Usage() as usage:
                            answer.usage = Usage(
                                answer.usage.input_tokens + usage.input_tokens,
                                answer.usage.output_tokens + usage.output_tokens,
                                answer.usage.cost_usd + usage.cost_usd,
                            )
                        case AgentError(message=message):
                            errors.append(message)
                        case Finished() as done:
                            finished = done
    except TimeoutError:
        answer.failure = f"no answer within {within:g}s"
        return answer
    except Exception as exc:  # whatever broke, the caller decides what no answer means
        answer.failure = f"{type(exc).__name__}: {exc}"
        return answer
    if finished is None or not finished.ok:
        reason = errors[-1] if errors else (finished.message if finished else "")
        answer.failure = tail(reason, 1) or "its turn failed"
        return answer
    answer.text = finished.message or "\n".join(texts)
    return answer
