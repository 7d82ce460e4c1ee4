"""The triggers checked against the repository, which the config alone cannot say: a
`watch` whose globs match no file, a `git` trigger on a branch that does not exist.

Run where work starts (the commands that start runs, `looptui service start`, the service
when it loads or reloads the config): each problem is one ConfigError naming the loop and
the key, and nothing starts.
"""

from __future__ import annotations

from looptui.engine.config import Config
from looptui.engine.errors import ConfigError
from looptui.engine.triggers.model import GitCommits, Watch
from looptui.engine.verification.families import matches_any
from looptui.engine.workspace import Repository


def check_triggers(config: Config | None, repository: Repository) -> None:
    """Raise ConfigError for the first trigger the repository cannot serve."""
    if config is None:
        return
    files: list[str] | None = None
    for loop in config.loops.values():
        for index, trigger in enumerate(loop.triggers):
            key = f"loops.{loop.name}.triggers[{index}]"
            if isinstance(trigger, GitCommits) and not repository.branch_exists(trigger.branch):
                raise ConfigError(
                    f"{config.path}: {key}.git: no branch {trigger.branch!r} in the repository"
                )
            if isinstance(trigger, Watch):
                if files is None:  # tracked files and untracked ones git does not ignore
                    files = repository.listed_files()
                for glob in trigger.globs:
                    if not any(matches_any((glob,), path) for path in files):
                        raise ConfigError(
                            f"{config.path}: {key}.watch: the glob {glob!r} matches no file "
                            "in the repository"
                        )
