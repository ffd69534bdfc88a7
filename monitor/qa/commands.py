"""The `callmon qa` subcommands."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add `qa` (ingest, list, search, show, report, export) to the `callmon` parser."""
