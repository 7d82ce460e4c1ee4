"""The `looptui` command: thin, it parses, calls the supervisor, and prints. Errors are one
line on stderr and exit status 2."""

from looptui.cli import (
    loops,
    memory,
    review,
    reviewing,
    runs,
    search,
    service,
    skills,
    workspace,
)
from looptui.cli.common import PRINT_BACKLOG, one_line_errors
from looptui.cli.group import main
from looptui.cli.runs import _print_events

__all__ = [
    "PRINT_BACKLOG",
    "_print_events",
    "loops",
    "main",
    "memory",
    "one_line_errors",
    "review",
    "reviewing",
    "runs",
    "search",
    "service",
    "skills",
    "workspace",
]
