"""Shared paths and helpers for the callmon tests."""

import subprocess
import sys
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


@pytest.fixture
def shared_data():
    """The evaluation data next to the repository, or a skip when it is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent (evaluation data lives outside the repository)")
    return SHARED_DATA
