#!/usr/bin/env python3
"""Live capture on virtual call lines: CPU share of one call, and trigger phrase → nudge latency.

A private PulseAudio server gets the two null sinks (scripts/virtual-audio); each scenario call
with expected nudges (tests/fixtures/calls/scn_*.json) is played into them with paplay, one side
per line, while `callmon live --no-tui --format jsonl` listens to their monitors. Both clocks are
this script's: latency is the moment a nudge's JSON line arrives here minus the moment the
trigger turn's last audio was played (paplay's start + the manifest's `trigger_end`), so it
includes paplay's start-up, PulseAudio, PortAudio and the pipe; a nudge raised before its
trigger turn ends (from a partial) counts as 0. CPU is the callmon process's user+system time
while the call plays, as a share of the machine's cores.

Usage: scripts/bench_live.py [--calls GLOB] [--before DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from bench_latency import GROUPS, SOUND_KINDS, WORD_KINDS, alternated, commit_of, summarise  # noqa: E402


def start_lines(runtime: Path) -> dict[str, str]:
    runtime.chmod(0o700)
    alsa = runtime / "asound.conf"
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{alsa}",
           "PULSE_CONFIG_PATH": str(runtime / "config")}
    subprocess.run([REPO / "scripts" / "virtual-audio", "--start", "--alsa-config", alsa], env=env, check=True,
                   capture_output=True)
    return env


def play_call(env: dict[str, str], manifest: dict, flac: Path, work: Path, repo: Path = REPO) -> dict:
    """Play one call into the lines while `callmon live` (of the checkout `repo`) listens; its latencies and CPU."""
    sides = {}
    for role, ch in (("agent", 1), ("customer", 2)):
        sides[role] = work / f"{role}.wav"
        subprocess.run(["sox", str(flac), str(sides[role]), "remix", str(ch)], check=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "live", "--agent-device", "agent_line", "--customer-device", "customer_line",
         "--no-tui", "--format", "jsonl", "-q", "--duration", str(round(manifest["duration"] + 30))],
        cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in proc.stdout:
            lines.put((time.monotonic(), json.loads(line)))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    events: list[tuple[float, dict]] = []
    while True:  # the model is loaded and audio flows
        item = lines.get(timeout=120)
        events.append(item)
        if item[1]["type"] == "metrics":
            break
    settle_end = time.monotonic() + 1.0
    while time.monotonic() < settle_end:
        try:
            events.append(lines.get(timeout=0.1))
        except queue.Empty:
            pass
    ps = psutil.Process(proc.pid)
    cpu0 = sum(ps.cpu_times()[:2])
    p0 = time.monotonic()
    players = [subprocess.Popen(["paplay", f"--device={role}_line", str(wav)], env=env) for role, wav in sides.items()]
    for p in players:
        p.wait()
    end = p0 + manifest["duration"] + 4.0  # the last turn's nudges get a few seconds
    while time.monotonic() < end:
        try:
            events.append(lines.get(timeout=0.1))
        except queue.Empty:
            pass
    cpu = sum(ps.cpu_times()[:2]) - cpu0
    wall = time.monotonic() - p0
    proc.terminate()
    while (item := lines.get(timeout=60)) is not None:
        events.append(item)
    proc.wait(timeout=60)
    # Call time at which playback began: from the newest metrics event read before it.
    before = [(arr, e) for arr, e in events if e["type"] == "metrics" and arr <= p0]
    arr, last = before[-1]
    t0 = last["t"] + (p0 - arr)
    rows = []
    for exp in manifest["expect_nudges"]:
        lo = t0 + manifest["turns"][exp["after_turn"]]["start"]
        hi = t0 + exp["trigger_end"] + exp["within_s"]
        hit = next((arr for arr, e in events if e["type"] == "nudge" and e["kind"] == exp["kind"] and lo <= e["t"] <= hi),
                   None)
        rows.append({"call": manifest["name"], "kind": exp["kind"],
                     "latency_s": None if hit is None else round(max(0.0, hit - (p0 + exp["trigger_end"])), 3)})
    return {"rows": rows, "cpu_share": cpu / wall / psutil.cpu_count(), "overflows": max(
        (e.get("overflows", 0) for _, e in events if e["type"] == "status"), default=0)}


def rows_of(results: list[dict]) -> list[dict]:
    """Every timed nudge of play_call's results, in call order."""
    return [row for r in results for row in r["rows"]]


def summary_of(results: list[dict]) -> dict:
    """CPU share (median and max over calls), overflows, and latency p50/p95 per kind group, of play_call's results."""
    shares = [r["cpu_share"] for r in results]
    return {
        "cpu_share": {"median": round(statistics.median(shares), 3), "max": round(max(shares), 3), "calls": len(shares)},
        "overflows": sum(r["overflows"] for r in results),
        **summarise(rows_of(results), (*GROUPS, ("all", WORD_KINDS | SOUND_KINDS))),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", default="tests/fixtures/calls/scn_*.json", help="manifests to play (glob)")
    parser.add_argument("--json", action="store_true", help="print the rows and summary as JSON")
    parser.add_argument("--before", type=Path, metavar="DIR",
                        help="a checkout of earlier code: each call is played to it too, alternating which goes first, "
                             "so the two are measured side by side on the same machine")
    args = parser.parse_args()
    runs = [(REPO, [])] + ([(args.before, [])] if args.before else [])
    with tempfile.TemporaryDirectory(prefix="pa-") as tmp:
        env = start_lines(Path(tmp))
        try:
            for i, path in enumerate(sorted(REPO.glob(args.calls))):
                manifest = json.loads(path.read_text())
                if not manifest.get("expect_nudges"):
                    continue
                print(f"live: {path.stem} ({manifest['duration']:.0f} s)", file=sys.stderr)
                for repo, results in alternated(runs, i):
                    results.append(play_call(env, manifest, path.with_suffix(".flac"), Path(tmp), repo))
        finally:
            subprocess.run(["pulseaudio", "--kill"], env=env, capture_output=True)
    now = runs[0][1]
    result = {"rows": rows_of(now), "summary": summary_of(now)}
    if args.before:
        before = runs[1][1]
        result["before"] = {"commit": commit_of(args.before), "rows": rows_of(before), "summary": summary_of(before)}
    if args.json:
        print(json.dumps(result))
    else:
        for r in result["rows"]:
            print(f"{r['call']:<32} {r['kind']:<16} {r['latency_s']}")
        print(json.dumps(result["summary"]))
        if args.before:
            print("before:", json.dumps(result["before"]["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
