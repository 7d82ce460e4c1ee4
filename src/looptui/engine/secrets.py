"""Keep secrets out of the store, the logs and the screen.

A `Redactor` is built once from the environment (by the CLI, which owns the environment) and
the config's agent environments, and replaces every secret value it knows, and every string
shaped like a well-known API key, with a placeholder before anything is stored or published.

A variable is secret when a word of its name (split at `_`) is one of SECRET_WORDS —
GITHUB_TOKEN, OPENAI_API_KEY, DB_PASSWORD, NPM_AUTH_TOKEN, REGISTRY_CREDS — unless its last
word says it holds a path (SSH_AUTH_SOCK, GOOGLE_APPLICATION_CREDENTIALS_FILE). Words are
matched whole, so GIT_AUTHOR_NAME, KEYBOARD_LAYOUT and TOKENIZERS_PARALLELISM are not secrets.

Values of three characters or more are secrets (a PIN, a short password); shorter ones and
flag-like words ("1", "true", "none") are not, as they would redact ordinary text. A value
shorter than eight characters is redacted only where it stands as a whole word, so that a
three-letter password does not blank out every word it happens to be part of. The password
of a URL (`https://user:password@host`) is redacted wherever it appears.
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
        "CRED",
        "CREDS",
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
# A password in a URL's userinfo: scheme://user:password@host (the user name stays).
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@\[\]]*:)([^\s/?#@]+)(@)")
_MIN_SECRET_LENGTH = 3  # shorter values ("1", "0", "no") would redact ordinary text
_SHORT_SECRET_LENGTH = 8  # below it, a value is redacted only as a whole word
# Values of secret-named variables that are settings, not secrets (`GH_TOKEN_ENABLED=true`).
_NOT_SECRETS = frozenset(
    {"true", "false", "yes", "off", "none", "null", "unset", "enabled", "disabled"}
)


class Redactor:
    """Replaces known secret values, passwords in URLs and key-shaped strings with
    `[REDACTED]`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted(
            {s for s in secrets if len(s) >= _MIN_SECRET_LENGTH and s.lower() not in _NOT_SECRETS},
            key=len,
            reverse=True,
        )
        self.secrets: tuple[str, ...] = tuple(values)
        patterns = [
            re.escape(v) if len(v) >= _SHORT_SECRET_LENGTH else rf"(?<!\w){re.escape(v)}(?!\w)"
            for v in values
        ]
        self._values = re.compile("|".join(patterns)) if patterns else None

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
        if "://" in text:  # a cheap look first: this runs on every line an agent prints
            text = _URL_PASSWORD.sub(_redacted_password, text)
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


def _redacted_password(match: re.Match[str]) -> str:
    return f"{match.group(1)}{REDACTED}{match.group(3)}"


def looks_secret(name: str) -> bool:
    """Whether an environment variable called `name` holds a secret, by its name alone."""
    words = [word for word in _WORD_SEPARATOR.split(name.upper()) if word]
    if not words or words[-1] in _PATH_WORDS:
        return False
    return any(word in SECRET_WORDS for word in words)


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """The values of the variables in `environ` whose names look secret."""
    return [value for name, value in environ.items() if looks_secret(name)]
