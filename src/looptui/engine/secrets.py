"""Keep secrets out of the store, the logs and the screen.

A `Redactor` is built once from the environment (by the CLI, which owns the environment) and
replaces every secret value it knows, and every string shaped like a well-known API key, with
a placeholder before anything is stored or published.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.IGNORECASE)
_KEY_SHAPES = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{16,}|sk-(?:proj-)?[A-Za-z0-9_\-]{20,}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|xox[abpr]-[A-Za-z0-9\-]{10,}|AKIA[0-9A-Z]{16})"
)
_MIN_SECRET_LENGTH = 8  # shorter values ("1", "true") would redact ordinary text


class Redactor:
    """Replaces known secret values and key-shaped strings with `[REDACTED]`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted({s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._values = re.compile("|".join(re.escape(v) for v in values)) if values else None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Redactor:
        """Treat the value of every variable whose name looks secret as a secret."""
        return cls(value for name, value in environ.items() if _SECRET_NAME.search(name))

    def text(self, text: str) -> str:
        if self._values is not None:
            text = self._values.sub(REDACTED, text)
        return _KEY_SHAPES.sub(REDACTED, text)

    def value(self, value: Any) -> Any:
        """Redact every string inside a JSON-like value."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value
