"""The `openai` agent: the same coding agent on the OpenAI SDK, over Chat Completions or the
Responses API (`api`), against OpenAI or any compatible server (`base_url`: vLLM, Ollama,
LM Studio, a gateway). Replies are streamed; the SDK's own retries are off, as model_loop
retries every fault the same way for all providers.
"""

from __future__ import annotations

from typing import Any

import openai

from looptui.engine.agents.base import AgentTask
from looptui.engine.agents.model_loop import (
    Call,
    Fault,
    ModelAgent,
    Reply,
    fault_of,
    parse_arguments,
    system_prompt,
    tool_specs,
)
from looptui.engine.config import AgentConfig

DEFAULT_MODEL = "gpt-5"
Specs = list[tuple[str, str, dict[str, Any]]] | None  # the tools offered; None: the coding set


class OpenAIAgent(ModelAgent):
    default_key_env = "OPENAI_API_KEY"

    def backend(self, task: AgentTask, api_key: str) -> ChatBackend | ResponsesBackend:
        base_url = self.config.base_url or task.environ.get("OPENAI_BASE_URL") or None
        client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=self.config.request_timeout,
            max_retries=0,
        )
        system, specs = system_prompt(task), tool_specs(task)
        if self.config.api == "responses":
            return ResponsesBackend(client, self.config, system, specs)
        return ChatBackend(client, self.config, system, specs)


class ChatBackend:
    kind = "chat"

    def __init__(
        self, client: openai.AsyncOpenAI, config: AgentConfig, system: str, specs: Specs = None
    ) -> None:
        self.client, self.config, self.system = client, config, system
        self.tools = [
            {"type": "function", "function": {"name": n, "description": d, "parameters": p}}
            for n, d, p in (tool_specs() if specs is None else specs)
        ]

    def start(self, prompt: str) -> list[dict[str, Any]]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": prompt}]

    def add_prompt(self, messages: list[dict[str, Any]], prompt: str) -> None:
        messages.append({"role": "user", "content": prompt})

    async def ask(self, messages: list[dict[str, Any]]) -> Reply:
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        finished = False
        tokens = (0, 0)
        try:
            create: Any = self.client.chat.completions.create  # plain dicts, not TypedDicts
            stream = await create(
                model=self.config.model or DEFAULT_MODEL,
                messages=messages,
                tools=self.tools,
                max_completion_tokens=self.config.max_tokens,
                stream=True,
                stream_options={"include_usage": True},
            )
            async for chunk in stream:
                if chunk.usage is not None:
                    tokens = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta.content:
                        text.append(delta.content)
                    for call in delta.tool_calls or ():
                        slot = calls.setdefault(call.index, {"id": "", "name": "", "args": ""})
                        slot["id"] = call.id or slot["id"]
                        if call.function is not None:
                            slot["name"] = call.function.name or slot["name"]
                            slot["args"] += call.function.arguments or ""
                    finished = finished or choice.finish_reason is not None
        except Exception as exc:
            raise fault_of(exc, self.config.request_timeout) from exc
        if not finished:
            raise Fault("the stream ended before the answer did", retry=True)
        found = tuple(
            Call(slot["id"], slot["name"], parse_arguments(slot["args"]), slot["args"])
            for _, slot in sorted(calls.items())
        )
        return Reply("".join(text), found, *tokens)

    def add_reply(self, messages: list[dict[str, Any]], reply: Reply) -> None:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.raw_arguments or "{}"},
                }
                for call in reply.calls
            ]
        messages.append(message)

    async def close(self) -> None:
        await self.client.close()

    def add_results(
        self, messages: list[dict[str, Any]], results: list[tuple[Call, str, bool]]
    ) -> None:
        for call, output, failed in results:
            content = f"ERROR: {output}" if failed else output
            messages.append({"role": "tool", "tool_call_id": call.id, "content": content})

    def unanswered(self, messages: list[dict[str, Any]]) -> list[Call]:
        last = len(messages) - 1
        while last >= 0 and messages[last].get("role") == "tool":
            last -= 1
        if last < 0 or messages[last].get("role") != "assistant":
            return []
        answered = {message.get("tool_call_id") for message in messages[last + 1 :]}
        calls = []
        for item in messages[last].get("tool_calls") or ():
            function = item.get("function") or {}
            if item.get("id") not in answered:
                raw = str(function.get("arguments") or "")
                name = str(function.get("name") or "tool")
                calls.append(Call(str(item["id"]), name, parse_arguments(raw), raw))
        return calls


class ResponsesBackend:
    kind = "responses"

    def __init__(
        self, client: openai.AsyncOpenAI, config: AgentConfig, system: str, specs: Specs = None
    ) -> None:
        self.client, self.config, self.system = client, config, system
        self.tools = [
            {"type": "function", "name": n, "description": d, "parameters": p}
            for n, d, p in (tool_specs() if specs is None else specs)
        ]

    def start(self, prompt: str) -> list[dict[str, Any]]:
        return [{"role": "user", "content": prompt}]

    def add_prompt(self, messages: list[dict[str, Any]], prompt: str) -> None:
        messages.append({"role": "user", "content": prompt})

    async def ask(self, messages: list[dict[str, Any]]) -> Reply:
        response: Any = None
        try:
            create: Any = self.client.responses.create  # plain dicts, not TypedDicts
            stream = await create(
                model=self.config.model or DEFAULT_MODEL,
                instructions=self.system,
                input=messages,
                tools=self.tools,
                max_output_tokens=self.config.max_tokens,
                store=False,
                stream=True,
            )
            async for event in stream:
                seen: Any = event  # one of some sixty event types; only these matter here
                if seen.type == "response.completed":
                    response = seen.response
                elif seen.type in ("response.failed", "response.incomplete", "error"):
                    detail = getattr(getattr(seen, "response", None), "error", None) or seen.type
                    raise Fault(f"the model API reported {seen.type} ({detail})", retry=True)
        except Fault:
            raise
        except Exception as exc:
            raise fault_of(exc, self.config.request_timeout) from exc
        if response is None:
            raise Fault("the stream ended before the answer did", retry=True)
        text, calls = [], []
        for item in response.output:
            if item.type == "message":
                text += [part.text for part in item.content if part.type == "output_text"]
            elif item.type == "function_call":
                arguments = parse_arguments(item.arguments)
                calls.append(Call(item.call_id, item.name, arguments, item.arguments))
        usage = response.usage
        tokens = (usage.input_tokens, usage.output_tokens) if usage else (0, 0)
        return Reply("".join(text), tuple(calls), *tokens)

    def add_reply(self, messages: list[dict[str, Any]], reply: Reply) -> None:
        if reply.text:
            messages.append({"role": "assistant", "content": reply.text})
        for call in reply.calls:
            messages.append(
                {
                    "type": "function_call",
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": call.raw_arguments or "{}",
                }
            )

    async def close(self) -> None:
        await self.client.close()

    def add_results(
        self, messages: list[dict[str, Any]], results: list[tuple[Call, str, bool]]
    ) -> None:
        for call, output, failed in results:
            content = f"ERROR: {output}" if failed else output
            messages.append({"type": "function_call_output", "call_id": call.id, "output": content})

    def unanswered(self, messages: list[dict[str, Any]]) -> list[Call]:
        trailing = []  # the calls of the last reply and the outputs given so far
        for item in reversed(messages):
            if item.get("type") not in ("function_call", "function_call_output"):
                break
            trailing.append(item)
        answered = {item.get("call_id") for item in trailing if item["type"] != "function_call"}
        return [
            Call(
                str(item["call_id"]),
                str(item.get("name") or "tool"),
                parse_arguments(str(item.get("arguments") or "")),
                str(item.get("arguments") or ""),
            )
            for item in reversed(trailing)
            if item["type"] == "function_call" and item.get("call_id") not in answered
        ]
