"""`callmon demo` in a real terminal (tmux), read off the screen as a person would, then quit with `q`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import REPO_ROOT

TMUX = shutil.which("tmux")
LIMIT_S = 180  # overall limit for each wait; on a quiet machine the first nudge shows within about 10 s

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed (apt-get install tmux)")


class Terminal:
    """A detached tmux session on a private server, so nothing else's tmux is touched."""

    def __init__(self, command: str, width: int = 100, height: int = 30) -> None:
        self.server = f"callmon-test-{os.getpid()}"
        env = {**os.environ, "TERM": "xterm-256color"}
        self._tmux("new-session", "-d", "-s", "demo", "-x", str(width), "-y", str(height), command, env=env)

    def _tmux(self, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
        assert TMUX is not None
        return subprocess.run([TMUX, "-L", self.server, *args], capture_output=True, text=True, env=env, check=check,
                              timeout=30)

    def screen(self) -> str:
        done = self._tmux("capture-pane", "-p", "-t", "demo", check=False)
        return done.stdout if done.returncode == 0 else ""

    def press(self, key: str) -> None:
        self._tmux("send-keys", "-t", "demo", key)

    def alive(self) -> bool:
        return self._tmux("has-session", "-t", "demo", check=False).returncode == 0

    def close(self) -> None:
        self._tmux("kill-server", check=False)


def wait_until(condition, what: str, terminal: Terminal) -> None:  # noqa: ANN001
    deadline = time.monotonic() + LIMIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}; the screen shows:\n{terminal.screen()}")
        time.sleep(0.2)


def test_demo_shows_a_nudge_and_q_quits(tmp_path):
    rc_file = tmp_path / "rc"
    command = f"cd {REPO_ROOT} && {sys.executable} -m monitor demo --speed 3; echo $? > {rc_file}"
    term = Terminal(command)
    try:
        wait_until(lambda: "demo_call.flac" in term.screen(), "the status line", term)

        def nudge_on_screen() -> bool:
            screen = term.screen()
            banner = ("! WARN" in screen or "▲ CRITICAL" in screen) and any(
                move in screen for move in ("ACKNOWLEDGE", "SLOW DOWN", "SET A BOUNDARY", "SUPERVISOR")
            )
            return banner and "customer" in screen and "Say: " in screen

        wait_until(nudge_on_screen, "a nudge banner over the transcript", term)
        screen = term.screen()
        assert "STT lag" in screen and "hub: off" in screen and "q quit" in screen

        term.press("q")
        wait_until(lambda: not term.alive(), "the demo to end after q", term)
        assert rc_file.read_text().strip() == "0"
    finally:
        term.close()
