"""The `anthropic` agent: a tool-using coding agent on the Anthropic Messages API.

It streams each reply with the official SDK (`messages.stream`); the SDK's own retries are
off, as model_loop retries every fault the same way for all providers.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic

from looptui.engine.agents.base import AgentTask
from looptui.engine.agents.model_loop import (
    Call,
    Fault,
    ModelAgent,
    Reply,
    fault_of,
    system_prompt,
    tool_specs,
)
from looptui.engine.config import AgentConfig

DEFAULT_MODEL = "claude-sonnet-5-5"


class AnthropicAgent(ModelAgent):
    default_key_env = "ANTHROPIC_API_KEY"

    def backend(self, task: AgentTask, api_key: str) -> AnthropicBackend:
        base_url = self.config.base_url or task.environ.get("ANTHROPIC_BASE_URL") or None
        client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            timeout=self.config.request_timeout,
            max_retries=0,
        )
        return AnthropicBackend(client, self.config, system_prompt(task), tool_specs(task))


class AnthropicBackend:
    kind = "anthropic"

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        config: AgentConfig,
        system: str,
        specs: list[tuple[str, str, dict[str, Any]]] | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.system = system
        self.tools = [
            {"name": name, "description": description, "input_schema": schema}
            for name, description, schema in (tool_specs() if specs is None else specs)
        ]

    def start(self, prompt: str) -> list[dict[str, Any]]:
        return [{"role": "user", "content": prompt}]

    def add_prompt(self, messages: list[dict[str, Any]], prompt: str) -> None:
        messages.append({"role": "user", "content": prompt})

    async def ask(self, messages: list[dict[str, Any]]) -> Reply:
        try:
            streamed: Any = self.client.messages.stream  # plain dicts, not TypedDicts
            async with streamed(
                model=self.config.model or DEFAULT_MODEL,
                max_tokens=self.config.max_tokens,
                system=self.system,
                messages=messages,
                tools=self.tools,
            ) as stream:
                message = await stream.get_final_message()
        except Exception as exc:
            raise fault_of(exc, self.config.request_timeout) from exc
        if message.stop_reason is None:
            raise Fault("the stream ended before the answer did", retry=True)
        texts, calls = [], []
        for block in message.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                arguments = block.input if isinstance(block.input, dict) else None
                calls.append(Call(block.id, block.name, arguments, json.dumps(block.input)))
        usage = message.usage
        tokens_in = (
            usage.input_tokens
            + (usage.cache_read_input_tokens or 0)
            + (usage.cache_creation_input_tokens or 0)
        )
        return Reply("\n".join(texts), tuple(calls), tokens_in, usage.output_tokens)

    def add_reply(self, messages: list[dict[str, Any]], reply: Reply) -> None:
        content: list[dict[str, Any]] = []
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        content += [
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments or {}}
            for call in reply.calls
        ]
        messages.append({"role": "assistant", "content": content or reply.text or "(empty)"})

    async def close(self) -> None:
        await self.client.close()

    def add_results(
        self, messages: list[dict[str, Any]], results: list[tuple[Call, str, bool]]
    ) -> None:
        blocks = [
            {"type": "tool_result", "tool_use_id": call.id, "content": output, "is_error": failed}
            for call, output, failed in results
        ]
        # A reply's results all go in the one user message that follows it: results saved
        # before a kill are joined, not followed, by the ones given on resuming
        if messages and messages[-1].get("role") == "user" and _results_only(messages[-1]):
            messages[-1] = {**messages[-1], "content": [*messages[-1]["content"], *blocks]}
        else:
            messages.append({"role": "user", "content": blocks})

    def unanswered(self, messages: list[dict[str, Any]]) -> list[Call]:
        last = len(messages) - 1
        while last >= 0 and messages[last].get("role") == "user" and _results_only(messages[last]):
            last -= 1
        if last < 0 or messages[last].get("role") != "assistant":
            return []
        answered = {
            block.get("tool_use_id")
            for message in messages[last + 1 :]
            for block in message["content"]
        }
        content = messages[last].get("content")
        return [
            Call(str(block["id"]), str(block.get("name") or "tool"), _input(block.get("input")))
            for block in (content if isinstance(content, list) else [])
            if isinstance(block, dict)
            and block.get("type") == "tool_use"
            and block.get("id") not in answered
        ]


def _results_only(message: dict[str, Any]) -> bool:
    """Whether a message's content is tool results and nothing else."""
    content = message.get("content")
    return (
        isinstance(content, list)
        and bool(content)
        and all(isinstance(block, dict) and block.get("type") == "tool_result" for block in content)
    )


def _input(value: object) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None
