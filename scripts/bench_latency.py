#!/usr/bin/env python3
"""Nudge latency: replay the scenario calls in real time and time each expected nudge.

For every expectation in tests/fixtures/calls/scn_*.json (a nudge kind after a trigger turn),
the latency is the nudge's `wall` minus the wall-clock moment the trigger turn's last audio
was played: `trigger_end + offset`, where `offset` is the smallest `wall - t` over the call's
metrics events (the pacing floor: the audio at call time t is released at wall t + offset).
A nudge that fires before its trigger turn ends (e.g. from a partial) counts as 0.

Usage: scripts/bench_latency.py [--calls GLOB] [--config FILE] [--before DIR] [--json]   (runs the calls one after another)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORD_KINDS = {"set_boundary", "call_supervisor", "acknowledge", "avoid_blame", "apologize_well", "keep_promises", "summarize"}
SOUND_KINDS = {"slow_down", "let_them_finish"}


def replay(flac: Path, config: str | None = None, repo: Path = REPO) -> list[dict]:
    """The call's events from `callmon replay --realtime`, run from the checkout `repo` (its `monitor` package)."""
    cmd = [sys.executable, "-m", "monitor", "replay", str(flac), "--realtime", "--format", "jsonl", "-q"]
    if config:
        cmd += ["--config", config]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=repo, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def latencies(manifest: dict, events: list[dict]) -> list[dict]:
    offset = min(e["wall"] - e["t"] for e in events if e["type"] == "metrics")
    rows = []
    for exp in manifest["expect_nudges"]:
        # From the trigger turn's start: a paced replay may raise it from a partial, mid-turn.
        lo, hi = manifest["turns"][exp["after_turn"]]["start"], exp["trigger_end"] + exp["within_s"]
        hit = next((e for e in events if e["type"] == "nudge" and e["kind"] == exp["kind"] and lo <= e["t"] <= hi), None)
        rows.append({
            "call": manifest["name"], "kind": exp["kind"],
            "latency_s": None if hit is None else round(max(0.0, hit["wall"] - (exp["trigger_end"] + offset)), 3),
        })
    return rows


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


GROUPS = (("word", WORD_KINDS), ("sound", SOUND_KINDS))


def summarise(rows: list[dict], groups: tuple[tuple[str, set[str]], ...] = GROUPS) -> dict:
    """Per group of nudge kinds: how many were timed, how many missed, latency p50 and p95."""
    out = {}
    for name, kinds in groups:
        vals = [r["latency_s"] for r in rows if r["kind"] in kinds and r["latency_s"] is not None]
        missed = sum(1 for r in rows if r["kind"] in kinds and r["latency_s"] is None)
        out[name] = {
            "n": len(vals), "missed": missed,
            "p50": round(statistics.median(vals), 3) if vals else None,
            "p95": round(percentile(vals, 0.95), 3) if vals else None,
        }
    return out


def commit_of(repo: Path) -> str:
    """The short commit a checkout is at (to name the `--before` column), or "unknown" outside git."""
    git = ["git", "rev-parse", "--short", "HEAD"]
    try:
        return subprocess.run(git, capture_output=True, text=True, cwd=repo).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def alternated(runs: list, i: int) -> list:
    """The runs in turn order for the i-th call: reversed every other call, so neither side always goes first."""
    return runs[:: 1 if i % 2 else -1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", default="tests/fixtures/calls/scn_*.json", help="manifests to replay (glob)")
    parser.add_argument("--json", action="store_true", help="print the rows and summary as JSON")
    parser.add_argument("--config", help="a config file for the replays (e.g. to compare a [vad] setting)")
    parser.add_argument("--before", type=Path, metavar="DIR",
                        help="a checkout of earlier code: each call is replayed by it too, alternating which goes first, "
                             "so the two are measured side by side on the same machine")
    args = parser.parse_args()
    rows, before = [], []
    for i, path in enumerate(sorted(REPO.glob(args.calls))):
        manifest = json.loads(path.read_text())
        if not manifest.get("expect_nudges"):
            continue
        print(f"latency: {path.stem} ({manifest['duration']:.0f} s)", file=sys.stderr)
        flac = path.with_suffix(".flac")
        runs = [(rows, REPO), (before, args.before)] if args.before else [(rows, REPO)]
        for out, repo in alternated(runs, i):
            out += latencies(manifest, replay(flac, args.config, repo))
    result = {"rows": rows, "summary": summarise(rows)}
    if args.before:
        result["before"] = {"commit": commit_of(args.before), "rows": before, "summary": summarise(before)}
    if args.json:
        print(json.dumps(result))
    else:
        for r in rows:
            print(f"{r['call']:<32} {r['kind']:<16} {r['latency_s']}")
        print(json.dumps(result["summary"]))
        if args.before:
            print("before:", json.dumps(result["before"]["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
