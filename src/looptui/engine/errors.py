"""Errors that reach the user as one line on stderr and exit status 2."""

from __future__ import annotations


class LooptuiError(Exception):
    """A problem the user can fix; its message is one line, shown as is."""


class ConfigError(LooptuiError):
    """`looptui.toml` is missing, broken, or holds an invalid value."""


class WorkspaceError(LooptuiError):
    """A git precondition does not hold (no repository, no commits, dirty checkout...)."""


class MergeRefused(WorkspaceError):
    """A merge would conflict or would touch uncommitted changes; nothing was changed."""


class AgentUnavailable(LooptuiError):
    """An agent cannot be started (its binary or script is missing)."""


class RunNotFound(LooptuiError):
    """No run, or more than one run, matches the id the user gave."""


class SearchError(LooptuiError):
    """A search query with nothing in it to search for."""


class HookRefused(LooptuiError):
    """A blocking hook (run_start, before_merge) exited 2: what it announced does not happen."""


class UsageLimited(LooptuiError):
    """A provider's usage or rate limit stopped the agent, and it said when the limit resets:
    the run is parked (deferred) until `reset_at`, not failed."""

    def __init__(self, message: str, reset_at: float) -> None:
        super().__init__(message)
        self.reset_at = reset_at  # epoch seconds
