"""The app asks Textual for up to 120 frames a second (a key's frame waits less for the next
one while cards change), unless the user set TEXTUAL_FPS; the environment that the service,
agents and checks inherit stays as the user gave it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from looptui.tui import FRAME_RATE

PROBE = (
    "import os, looptui.tui.app, textual.constants; "
    "print(textual.constants.MAX_FPS, os.environ.get('TEXTUAL_FPS'))"
)


@pytest.mark.parametrize(("given", "expected"), [(None, FRAME_RATE), ("30", "30")])
def test_the_app_draws_up_to_its_frame_rate_unless_the_user_says(
    given: str | None, expected: str
) -> None:
    environ = {key: value for key, value in os.environ.items() if key != "TEXTUAL_FPS"}
    if given is not None:
        environ["TEXTUAL_FPS"] = given
    shown = subprocess.run(
        [sys.executable, "-c", PROBE], env=environ, capture_output=True, text=True, check=True
    )
    # the app's choice is Textual's alone: what it starts gets the environment as it was
    assert shown.stdout.split() == [expected, str(given)]
