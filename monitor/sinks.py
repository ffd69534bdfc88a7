"""Where events go in a terminal: JSONL or readable text on stdout, progress on stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from .events import CallEnded, CallStarted, Event, Metrics, Nudge, NudgeCleared, TranscriptFinal
from .vocab import clock


class JsonlSink:
    """One JSON object per line, flushed at once so a reader downstream sees it live."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out

    def __call__(self, event: Event) -> None:
        """Write the event."""
        self.out.write(event.to_json() + "\n")
        self.out.flush()


class TextSink:
    """A readable transcript: settled lines with their call times and roles."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out

    def __call__(self, event: Event) -> None:
        """Print what a person reading along wants: finals, nudges and how they ended."""
        if isinstance(event, TranscriptFinal):
            line = f"[{clock(event.start)} → {clock(event.end)}] {event.role:<8} {event.text}"
        elif isinstance(event, Nudge):
            line = (
                f"{'':>19}>>> NUDGE {event.severity.upper()} {event.kind} at {clock(event.t)}: {event.message}\n"
                f"{'':>19}    why: {event.reason}"
            )
        elif isinstance(event, NudgeCleared):
            followed = f", followed after {event.follow_s:.1f} s" if event.followed else ""
            line = f"{'':>19}<<< {event.kind} cleared at {clock(event.t)} ({event.how}{followed})"
        elif isinstance(event, CallEnded):
            line = (
                f"--- call ended at {clock(event.t)}: peak heat {event.peak_heat}, "
                f"{event.nudges_raised} nudges, {event.nudges_followed} followed"
            )
        else:
            return
        self.out.write(line + "\n")
        self.out.flush()


class Progress:
    """How far a replay has got, on stderr: a live line on a terminal, a summary at the end."""

    def __init__(self, duration_s: float | None, err: TextIO = sys.stderr, quiet: bool = False) -> None:
        self.duration = duration_s
        self.err = err
        self.live = err.isatty() and not quiet
        self.quiet = quiet
        self.finals = 0
        self._t0 = time.monotonic()
        self._last = 0.0

    def __call__(self, event: Event) -> None:
        """Count finals; redraw the live line a few times a second."""
        if isinstance(event, CallStarted):
            self._t0 = time.monotonic()
        elif isinstance(event, TranscriptFinal):
            self.finals += 1
        elif isinstance(event, Metrics) and self.live:
            now = time.monotonic()
            if now - self._last >= 0.25:
                self._last = now
                self.err.write("\r" + self._line(event.t, now) + "\033[K")
                self.err.flush()
        elif isinstance(event, CallEnded) and not self.quiet:
            prefix = "\r\033[K" if self.live else ""
            self.err.write(prefix + self._line(event.t, time.monotonic(), done=True) + "\n")
            self.err.flush()

    def _line(self, t: float, now: float, done: bool = False) -> str:
        elapsed = max(now - self._t0, 1e-6)
        of = f" / {clock(self.duration)}" if self.duration and not done else ""
        pct = f" ({min(100.0, 100 * t / self.duration):.0f}%)" if self.duration and not done else ""
        verb = "replayed" if done else "replaying"
        return f"{verb} {clock(t)}{of}{pct} in {elapsed:.1f} s, {t / elapsed:.1f}× real time, {self.finals} utterances"
