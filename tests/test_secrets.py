"""Which values are secrets: by variable name, from the config's agent environments too."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

from conftest import cli_env, make_repo, run_cli
from looptui.engine.config import load_config
from looptui.engine.secrets import REDACTED, Redactor, looks_secret

SECRET_NAMES = [
    "GITHUB_TOKEN",
    "OPENAI_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "DB_PASSWORD",
    "SMTP_PASS",
    "NPM_AUTH_TOKEN",
    "X_AUTH",
    "apikey",
    "MY_SERVICE_CREDENTIALS",
    "session-cookie",
    "REGISTRY_CREDS",
    "DOCKER_CREDENTIALS",
    "FTP_PASS",
    "MYSQL_PASSWD",
]
PLAIN_NAMES = [
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "SSH_AUTH_SOCK",
    "KEYBOARD_LAYOUT",
    "TOKENIZERS_PARALLELISM",
    "MONKEY_PATCH",
    "GOOGLE_APPLICATION_CREDENTIALS_FILE",
    "AUTHOR",
    "PWD",
]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_names_that_hold_secrets(name: str) -> None:
    assert looks_secret(name)


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_names_that_do_not(name: str) -> None:
    assert not looks_secret(name)


def test_the_authors_name_and_the_agent_socket_stay_readable() -> None:
    environ = {
        "GIT_AUTHOR_NAME": "Ada Lovelace-Byron",
        "SSH_AUTH_SOCK": "/tmp/ssh-agent.sock.4242",
        "DEPLOY_TOKEN": "tok-0123456789abcdef",
    }
    redactor = Redactor.from_environment(environ)
    text = "Ada Lovelace-Byron via /tmp/ssh-agent.sock.4242 with tok-0123456789abcdef"
    assert redactor.text(text) == f"Ada Lovelace-Byron via /tmp/ssh-agent.sock.4242 with {REDACTED}"


def test_a_redactor_learns_more_values() -> None:
    first = Redactor(["alpha-secret-1"])
    both = first.with_values(["beta-secret-22"])
    assert both.text("alpha-secret-1 beta-secret-22") == f"{REDACTED} {REDACTED}"
    assert first.text("beta-secret-22") == "beta-secret-22"


def test_the_config_knows_the_secrets_it_gives_agents(tmp_path: Path) -> None:
    path = tmp_path / "looptui.toml"
    path.write_text(
        '[agents.a]\nkind = "command"\ncommand = ["x"]\n'
        'env = { SERVICE_API_KEY = "key-from-config-123", MODE = "a-long-plain-value" }\n'
    )
    assert load_config(path).secret_values() == ["key-from-config-123"]


def test_a_secret_in_an_agents_env_never_reaches_the_store(tmp_path: Path) -> None:
    secret = "config-secret-0123456789"
    config = {
        "agents": {
            "leaky": {
                "kind": "command",
                "command": [sys.executable, "-c", "import os; print(os.environ['SERVICE_TOKEN'])"],
                "env": {"SERVICE_TOKEN": secret},
            }
        },
        "loops": {
            "leak": {"prompt": "leak", "agent": "leaky", "max_iterations": 1, "checks": ["true"]}
        },
    }
    repo = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, config)
    result = run_cli(repo, "run", "leak")
    assert result.code == 0, result.stderr
    assert secret not in result.stdout and REDACTED in result.stdout
    [run] = json.loads(run_cli(repo, "status", "--json").stdout)
    assert secret not in run_cli(repo, "log", run["id"]).stdout
    with sqlite3.connect(repo / ".git" / "looptui" / "store.db") as db:
        dump = "\n".join(db.iterdump())
    assert secret not in dump


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "cloning https://deploy:s3cr3t-pw@git.example.com/team/repo.git",
            f"cloning https://deploy:{REDACTED}@git.example.com/team/repo.git",
        ),
        (
            "DATABASE_URL=postgres://app:pw@db:5432/x",
            f"DATABASE_URL=postgres://app:{REDACTED}@db:5432/x",
        ),
        ("git+ssh://me:hunter2@host/path", f"git+ssh://me:{REDACTED}@host/path"),
        ("redis://:only-a-password@cache", f"redis://:{REDACTED}@cache"),
    ],
)
def test_a_password_inside_a_url_is_redacted_and_the_user_name_kept(
    text: str, expected: str
) -> None:
    assert Redactor().text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "see http://example.com:8080/path?q=1",
        "mail me at user@example.com, port host:22",
        "ssh://git@github.com/org/repo.git",
        "a time 12:30@noon",
    ],
)
def test_urls_without_a_password_stay_as_they_are(text: str) -> None:
    assert Redactor().text(text) == text


def test_short_values_of_secret_variables_are_redacted_as_whole_words() -> None:
    redactor = Redactor.from_environment(
        {
            "DB_PASS": "k9x2",
            "ADMIN_PASSWORD": "hunter",
            "DEBUG_TOKEN": "1",
            "USE_AUTH": "true",
            "CACHE_PASS": "pw9",
            "SSO_SECRET": "off",
        }
    )
    text = "login k9x2 with hunter or pw9; k9x2x, pw99 and hunters stay; tokens: 1, true, off"
    assert redactor.text(text) == (
        f"login {REDACTED} with {REDACTED} or {REDACTED}; k9x2x, pw99 and hunters stay; "
        "tokens: 1, true, off"
    )


def test_a_short_secret_is_redacted_in_the_store_and_the_log(tmp_path: Path) -> None:
    config = {
        "agents": {
            "leaky": {
                "kind": "command",
                "command": [
                    sys.executable,
                    "-c",
                    "import os; print('pin', os.environ['APP_PASS'])",
                ],
            }
        },
        "loops": {
            "leak": {"prompt": "leak", "agent": "leaky", "max_iterations": 1, "checks": ["true"]}
        },
    }
    repo = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, config)
    env = {**cli_env(), "APP_PASS": "q7w8"}
    result = run_cli(repo, "run", "leak", env=env)
    assert result.code == 0, result.stderr
    assert "pin q7w8" not in result.stdout and f"pin {REDACTED}" in result.stdout
    with sqlite3.connect(repo / ".git" / "looptui" / "store.db") as db:
        dump = "\n".join(db.iterdump())
    assert "q7w8" not in dump
