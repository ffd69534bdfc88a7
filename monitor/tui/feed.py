"""The TUI's sink: takes events on the pipeline and STT threads without ever blocking them.

The sink only appends to a deque (atomic in CPython, no waiting on the UI); the app drains it
about ten times a second on its own loop (`drain`), coalesced so a burst of events becomes one
screen update: the latest metrics, the latest partial per role, and every final, nudge, clear,
status and agent action in order.

Two things are measured here, on the sink side, because they need every event and not only the
coalesced ones:

- the meters' history: one `Metrics` per second of call time, the last few minutes (sparklines);
- the STT lag: the wall-clock age of the newest transcript relative to the audio it covers, i.e.
  the transcript's `wall` minus the `wall` of the metrics block that carried the utterance's last
  sample (when that audio was read). It is true at any replay speed and across pauses, and it
  includes the VAD hangover, which the agent also waits for.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from dataclasses import dataclass, field

from ..events import Event, Metrics, Status, TranscriptFinal, TranscriptPartial

HISTORY_S = 180  # seconds of call time the sparklines cover
_LAG_WINDOW = 600  # metrics blocks remembered to look up when audio was read (60 s at 100 ms)


@dataclass
class Batch:
    """What arrived since the last drain, coalesced for one screen update."""

    log: list[Event] = field(default_factory=list)  # finals, nudges, clears, agent actions, start/end, in order
    metrics: Metrics | None = None  # only the latest
    partials: dict[str, TranscriptPartial] = field(default_factory=dict)  # latest per role, newer than its final
    history: list[Metrics] | None = None  # the sparkline points, when a new one was added
    stt_lag: float | None = None  # seconds, when a transcript arrived
    overflows: int | None = None  # dropped capture blocks, when a status said so
    notes: list[str] = field(default_factory=list)  # warnings logged while the screen is up

    def __bool__(self) -> bool:
        return bool(
            self.log or self.metrics or self.partials or self.notes or self.history is not None or self.overflows is not None
        )


class EventFeed:
    """The sink the TUI adds to the call; `drain()` from the UI loop."""

    def __init__(self) -> None:
        self._queue: deque[Event | str] = deque()
        self._lock = threading.Lock()  # guards the history and lag figures (never held for long)
        self._history: deque[Metrics] = deque(maxlen=HISTORY_S)
        self._history_changed = False
        self._blocks_t: deque[float] = deque(maxlen=_LAG_WINDOW)
        self._blocks_wall: deque[float] = deque(maxlen=_LAG_WINDOW)
        self._lag: float | None = None

    def __call__(self, event: Event) -> None:
        """Take one event (pipeline or STT thread): O(1), never waits for the screen."""
        if isinstance(event, Metrics):
            with self._lock:
                self._blocks_t.append(event.t)
                self._blocks_wall.append(event.wall)
                if not self._history or int(event.t) > int(self._history[-1].t):
                    self._history.append(event)
                    self._history_changed = True
        elif isinstance(event, TranscriptPartial):
            with self._lock:
                i = bisect.bisect_left(self._blocks_t, event.end)
                if i < len(self._blocks_t):
                    self._lag = max(0.0, event.wall - self._blocks_wall[i])
        self._queue.append(event)

    def note(self, text: str) -> None:
        """A line for the agent that is not an event (a warning logged while the screen is up)."""
        self._queue.append(text)

    def drain(self) -> Batch:
        """Everything since the last drain (UI thread), coalesced."""
        batch = Batch()
        while True:
            try:
                event = self._queue.popleft()
            except IndexError:
                break
            if isinstance(event, str):
                batch.notes.append(event)
            elif isinstance(event, Metrics):
                batch.metrics = event
            elif isinstance(event, TranscriptFinal):
                batch.partials.pop(event.role, None)  # the final supersedes the partials before it
                batch.log.append(event)
            elif isinstance(event, TranscriptPartial):
                batch.partials[event.role] = event
            else:
                if isinstance(event, Status):
                    batch.overflows = event.overflows
                batch.log.append(event)
        with self._lock:
            if self._history_changed:
                batch.history = list(self._history)
                self._history_changed = False
            batch.stt_lag = self._lag
        return batch
