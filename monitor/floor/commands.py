"""The `callmon hub` and `callmon floor` subcommands."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add `hub` and `floor` to the `callmon` parser."""
