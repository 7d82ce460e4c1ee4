"""A run's evidence per iteration (checks with their output, the verdict, the prompt it was
given); its notes are a `MemoryList`."""

from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Collapsible, Static

from looptui.console import clean, system_heading
from looptui.engine.models import CheckResult, Iteration, Verdict, local_clock

CHECK_OUTPUT_LINES = 200


class VerdictsView(VerticalScroll):
    """Per iteration: each check, its output folded, and the verdict's reasons and next steps."""

    DEFAULT_CSS = """
    VerdictsView {
        padding: 0 1;
        .iteration-title { text-style: bold; margin-top: 1; }
        .-pass { color: $verdict-pass; }
        .-fail { color: $verdict-fail; }
        .-unknown { color: $verdict-unknown; }
        .detail { color: $text-muted; padding-left: 2; }
        Collapsible { padding-left: 1; border: none; }
        .check-output { color: $text-muted; }
    }
    """

    async def show(
        self,
        iterations: list[Iteration],
        checks: list[tuple[int, CheckResult]],
        verdicts: list[tuple[int, Verdict]],
    ) -> None:
        await self.remove_children()
        if not iterations:
            await self.mount(Static("No iteration yet.", classes="detail"))
            return
        by_iteration: dict[int, list[CheckResult]] = {}
        for number, check in checks:
            by_iteration.setdefault(number, []).append(check)
        verdict_of = dict(verdicts)
        widgets: list[Static | Collapsible] = []
        for iteration in reversed(iterations):  # the newest is what the user came for
            verdict = verdict_of.get(iteration.number)
            if verdict is None:
                state, look = "in progress", "-unknown"
            else:
                state = verdict.outcome
                look = {
                    "done": "-pass",
                    "not done": "-fail",
                    "flagged": "-fail",
                    "unknown": "-unknown",
                }[state]
            agent = {None: "", True: "agent finished", False: "agent failed"}[iteration.agent_ok]
            title = f"Iteration {iteration.number} · verdict: {state}"
            if verdict is not None:
                title += f" ({verdict.evaluator}, confidence {verdict.confidence:.0%})"
            widgets.append(Static(title, classes=f"iteration-title {look}"))
            if agent:
                widgets.append(Static(f"{agent} · diff {iteration.diff}", classes="detail"))
            for check in by_iteration.get(iteration.number, []):
                widgets.append(_check_widget(check))
            if verdict is not None:
                for flag in verdict.flags:
                    line = f"⚑ flagged {flag.where}: {flag.message} [{flag.rule}]"
                    widgets.append(Static(Text(line), classes="detail -fail"))
                if verdict.flags:
                    hint = "(if changing the tests is the task, the loop needs allow_test_edits)"
                    widgets.append(Static(Text(hint), classes="detail"))
                for reason in verdict.reasons:
                    widgets.append(Static(Text(f"reason: {reason}"), classes="detail"))
                for step in verdict.next_steps:
                    widgets.append(Static(Text(f"next: {step}"), classes="detail"))
        await self.mount_all(widgets)


def _check_widget(check: CheckResult) -> Collapsible:
    mark = "✔" if check.passed else "✘"
    title = f"{mark} {check.name}: {check.outcome} in {check.duration:.1f}s  · {check.command}"
    lines = check.output.splitlines()[-CHECK_OUTPUT_LINES:]
    output = Static(Text("\n".join(lines) or "(no output)"), classes="check-output")
    return Collapsible(
        output,
        title=title,
        collapsed=check.passed,
        classes="-pass" if check.passed else "-fail",
    )


class PromptView(VerticalScroll):
    """Each iteration's prompt, exactly as its agent was given it, newest first and open;
    the older ones folded, and the system text sent with a prompt folded under it."""

    DEFAULT_CSS = """
    PromptView {
        padding: 0 1;
        Collapsible { padding-left: 1; border: none; }
        .prompt-text { padding-left: 1; }
        .system-text { color: $text-muted; padding-left: 1; }
        .detail { color: $text-muted; margin-top: 1; }
    }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self._collapsed: dict[int, bool] = {}  # as the reader left each iteration's prompt

    async def show(self, iterations: list[Iteration], now: float | None = None) -> None:
        """Show `iterations`' prompts; one the reader opened or folded stays so."""
        for widget in self.query(".iteration-prompt").results(Collapsible):
            number = widget.name
            if number is not None and number.isdigit():
                self._collapsed[int(number)] = widget.collapsed
        await self.remove_children()
        if not iterations:
            await self.mount(Static("No iteration yet.", classes="detail"))
            return
        newest = iterations[-1].number
        widgets = []
        for iteration in reversed(iterations):
            parts: list[Static | Collapsible] = []
            if iteration.system_prompt is not None:
                system = Static(Text(clean(iteration.system_prompt)), classes="system-text")
                parts.append(Collapsible(system, title=system_heading(iteration)))
            parts.append(Static(Text(clean(iteration.prompt)), classes="prompt-text"))
            size = len(iteration.prompt)
            title = (
                f"Iteration {iteration.number} · {local_clock(iteration.started_at, now)} · "
                f"{size} character{'s' if size != 1 else ''}"
            )
            collapsed = self._collapsed.get(iteration.number, iteration.number != newest)
            widgets.append(
                Collapsible(
                    *parts,
                    title=title,
                    collapsed=collapsed,
                    name=str(iteration.number),
                    classes="iteration-prompt",
                )
            )
        await self.mount_all(widgets)
