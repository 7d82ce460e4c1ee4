"""`python -m looptui.service serve --repo PATH`: the service as a detached process starts it,
without the command line's own imports (click, rich), so that it answers sooner."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from looptui.engine.errors import LooptuiError
from looptui.service.daemon import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="looptui-service")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--repo", type=Path, default=Path.cwd())
    arguments = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(serve(arguments.repo, os.environ))
    except LooptuiError as exc:
        print(f"looptui: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception:  # the log has the traceback; the status line says where
        logging.getLogger("looptui.service").exception("the service failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
