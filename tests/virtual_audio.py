"""A private PulseAudio server with the two virtual call lines, and a `callmon live` process to listen to them.

The server runs in its own XDG_RUNTIME_DIR, so tests never touch the machine's own sound server;
`scripts/virtual-audio` (the script users run) creates the lines, and its ALSA definitions are
passed to callmon through ALSA_CONFIG_PATH.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT


class VirtualLines:
    """PulseAudio with null sinks `agent_line` and `customer_line`, visible to PortAudio."""

    def __init__(self, runtime: Path) -> None:
        self.runtime = runtime
        self.alsa = runtime / "asound.conf"
        self.env = {
            **os.environ,
            "XDG_RUNTIME_DIR": str(runtime),
            "ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{self.alsa}",
            "PULSE_CONFIG_PATH": str(runtime / "config"),
        }

    def start(self) -> None:
        """Start the server (or restart it) and create the lines."""
        subprocess.run(
            [REPO_ROOT / "scripts" / "virtual-audio", "--start", "--alsa-config", self.alsa],
            env=self.env, check=True, capture_output=True, timeout=60,
        )

    def kill(self) -> None:
        """Stop the server, as when the sound server crashes or restarts."""
        subprocess.run(["pulseaudio", "--kill"], env=self.env, capture_output=True, timeout=30)
        for _ in range(100):
            if subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode != 0:
                return
            time.sleep(0.1)

    def play(self, line: str, wav: Path) -> subprocess.Popen:
        """Play a mono file into one line (returns at once)."""
        return subprocess.Popen(["paplay", f"--device={line}", str(wav)], env=self.env)


def start_virtual_lines(runtime: Path) -> VirtualLines:
    """A running private PulseAudio server in `runtime` with the two call lines; skips when the tools are missing."""
    for tool in ("pulseaudio", "pactl", "paplay", "sox"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/setup installs it)")
    runtime.chmod(0o700)
    lines = VirtualLines(runtime)
    lines.start()
    return lines


def split_channels(call: Path, out_dir: Path) -> dict[str, Path]:
    """The agent (channel 0) and customer (channel 1) sides of a fixture call as mono wav files."""
    sides = {}
    for role, channel in (("agent", 1), ("customer", 2)):
        sides[role] = out_dir / f"{call.stem}.{role}.wav"
        subprocess.run(["sox", str(call), str(sides[role]), "remix", str(channel)], check=True)
    return sides


class LiveRun:
    """`callmon live ... --no-tui --format jsonl` as a subprocess, with its events read as they come."""

    def __init__(self, lines: VirtualLines, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "live", "--agent-device", "agent_line", "--customer-device", "customer_line",
             "--no-tui", "--format", "jsonl", "-q", *args],
            cwd=REPO_ROOT, env=lines.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.events: list[dict] = []
        self.stderr: list[str] = []
        self._queue: queue.Queue[dict | None] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(json.loads(line))
        self._queue.put(None)

    def wait_for(self, predicate, timeout: float = 90.0) -> dict:
        """The first event (from now on) for which predicate is true; fails the test after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if event is None:
                self.proc.wait()
                pytest.fail(f"callmon live ended early: {''.join(self.stderr)}")
            self.events.append(event)
            if predicate(event):
                return event
        pytest.fail("callmon live did not produce the expected event in time")

    def finish(self, timeout: float = 120.0) -> tuple[int, str]:
        """Wait for the process to end; all its events are in `events`."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            raise
        while (event := self._queue.get(timeout=10)) is not None:
            self.events.append(event)
        for reader in self._readers:
            reader.join(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode, "".join(self.stderr)
