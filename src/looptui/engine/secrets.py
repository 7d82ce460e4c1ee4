"""Keep secrets out of the store, the logs and the screen.

A `Redactor` is built once from the environment (by the CLI, which owns the environment) and
the config's agent environments, and replaces every secret value it knows, and every string
shaped like a well-known API key, with a placeholder before anything is stored or published.

A variable is secret when a word of its name (split at `_`) is one of SECRET_WORDS —
GITHUB_TOKEN, OPENAI_API_KEY, DB_PASSWORD, NPM_AUTH_TOKEN — unless its last word says it
holds a path (SSH_AUTH_SOCK, GOOGLE_APPLICATION_CREDENTIALS_FILE). Words are matched whole,
so GIT_AUTHOR_NAME, KEYBOARD_LAYOUT and TOKENIZERS_PARALLELISM are not secrets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"
SECRET_WORDS = frozenset(
    {
        "KEY",
        "KEYS",
        "APIKEY",
        "TOKEN",
        "TOKENS",
        "AUTHTOKEN",
        "SECRET",
        "SECRETS",
        "PASSWORD",
        "PASSWORDS",
        "PASSWD",
        "PASS",
        "PASSPHRASE",
        "CREDENTIAL",
        "CREDENTIALS",
        "AUTH",
        "COOKIE",
    }
)
_PATH_WORDS = frozenset({"SOCK", "SOCKET", "PATH", "FILE", "DIR"})  # a location, not a secret
_WORD_SEPARATOR = re.compile(r"[^A-Za-z0-9]+")
_KEY_SHAPES = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{16,}|sk-(?:proj-)?[A-Za-z0-9_\-]{20,}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|xox[abpr]-[A-Za-z0-9\-]{10,}|AKIA[0-9A-Z]{16})"
)
_MIN_SECRET_LENGTH = 8  # shorter values ("1", "true") would redact ordinary text


class Redactor:
    """Replaces known secret values and key-shaped strings with `[REDACTED]`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted({s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)
        self.secrets: tuple[str, ...] = tuple(values)
        self._values = re.compile("|".join(re.escape(v) for v in values)) if values else None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Redactor:
        """Treat the value of every variable whose name looks secret as a secret."""
        return cls(secret_values(environ))

    def with_values(self, secrets: Iterable[str]) -> Redactor:
        """A redactor that also knows `secrets` (such as `Config.secret_values()`)."""
        return Redactor((*self.secrets, *secrets))

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


def looks_secret(name: str) -> bool:
    """Whether an environment variable called `name` holds a secret, by its name alone."""
    words = [word for word in _WORD_SEPARATOR.split(name.upper()) if word]
    if not words or words[-1] in _PATH_WORDS:
        return False
    return any(word in SECRET_WORDS for word in words)


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """The values of the variables in `environ` whose names look secret."""
    return [value for name, value in environ.items() if looks_secret(name)]
