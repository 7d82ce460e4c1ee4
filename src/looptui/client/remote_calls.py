"""What the halves of `RemoteSupervisor` (memory, review) stand on: one typed command to the
service and its reply."""

from __future__ import annotations

import abc
from typing import TypeVar

from looptui.protocol.commands import AnyCommand

T = TypeVar("T")


class RemoteCalls(abc.ABC):
    """A client of the service that can send a command (`RemoteSupervisor.call`)."""

    @abc.abstractmethod
    async def call(self, command: AnyCommand, result: type[T]) -> T:
        """One command and its reply."""
