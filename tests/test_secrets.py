"""Which values are secrets: by variable name, from the config's agent environments too."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

from conftest import make_repo, run_cli
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
