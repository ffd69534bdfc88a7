"""Shared paths and helpers for the callmon tests."""

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def callmon(*args, timeout=300):
    """Run `python -m monitor ARGS` as a user would; returns the CompletedProcess (text mode)."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="session")
def run_callmon():
    """The `callmon` runner: `run_callmon("replay", path, "--format", "jsonl", timeout=300)`."""
    return callmon


class Replays:
    """`callmon replay FILE PACE --format jsonl -q` once per (file, pace), the events kept for every test.

    `pace` is the replay's pacing flags, e.g. ("--fast",) or ("--speed", "4"). `prefetch` runs several
    replays at once: paced ones mostly wait on the clock, and nothing they decide may depend on load.
    """

    TIMEOUT_S = 300

    def __init__(self):
        self._runs = {}

    def prefetch(self, flacs, pace=("--fast",), jobs=3):
        todo = [f for f in flacs if (f, pace) not in self._runs]
        with ThreadPoolExecutor(jobs) as pool:
            for flac, run in zip(todo, pool.map(lambda f: self._replay(f, pace), todo), strict=True):
                self._runs[flac, pace] = run

    def events(self, flac, pace=("--fast",)):
        if (flac, pace) not in self._runs:
            self._runs[flac, pace] = self._replay(flac, pace)
        events, error = self._runs[flac, pace]
        if error:
            pytest.fail(error, pytrace=False)
        return events

    def nudges(self, flac, pace=("--fast",)):
        return [e for e in self.events(flac, pace) if e.get("type") == "nudge"]

    def _replay(self, flac, pace):
        result = callmon("replay", flac, *pace, "--format", "jsonl", "-q", timeout=self.TIMEOUT_S)
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-15:])
            return None, f"callmon replay {flac.name} {' '.join(pace)} exited with {result.returncode}:\n{tail}"
        events = []
        for n, line in enumerate(result.stdout.splitlines(), 1):
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError as exc:
                return None, f"callmon replay {flac.name}: stdout line {n} is not JSON ({exc.msg}): {line[:200]!r}"
        return events, None


@pytest.fixture(scope="session")
def replays():
    """Whole-call replays shared by the scenario and speed-invariance tests (each call replayed once per pace)."""
    return Replays()


@pytest.fixture
def shared_data():
    """The evaluation data next to the repository, or a skip when it is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent (evaluation data lives outside the repository)")
    return SHARED_DATA
