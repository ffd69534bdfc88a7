"""The one pipeline, live or replay: source blocks in, call-time events out to the sinks.

The calling thread reads the source and runs the per-role measures that are cheap and must keep
pace with the audio (one `RoleFrontEnd` per role: loudness, VAD, segmenting, agitation); the STT
worker thread runs the model. Both emit through `_emit`, which serialises sinks under one lock,
so a sink sees one event at a time and never needs its own locking.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from .audio.source import RATE, AudioBlock
from .config import Config
from .errors import PipelineError
from .events import CallEnded, CallStarted, Event, Metrics, RoleMetrics, Status, TranscriptFinal, TranscriptPartial, Word
from .stt.frontend import RoleFrontEnd
from .stt.model import RawWord
from .stt.segmenter import Utterance
from .stt.worker import SttWorker, Transcriber

Sink = Callable[[Event], None]
Stage = Callable[[Event], list[Event]]


def new_call_id() -> str:
    """A fresh call id: `c-` and 8 hex digits."""
    return f"c-{uuid.uuid4().hex[:8]}"


class Pipeline:
    """Runs one call from a source to the sinks."""

    def __init__(
        self,
        cfg: Config,
        source: Iterable[AudioBlock],
        roles: dict[str, int],
        transcriber: Transcriber,
        sinks: list[Sink],
        *,
        partials: bool,
        source_name: str = "",
        call_id: str | None = None,
        stages: list[Stage] | None = None,
    ) -> None:
        self.cfg = cfg
        self.source = source
        self.roles = roles
        self.transcriber = transcriber
        self.sinks = sinks
        self.partials = partials
        self.source_name = source_name
        self.call_id = call_id or new_call_id()
        self.stages = stages or []
        self._lock = threading.RLock()
        self._in_flight: deque[int] = deque()  # call-time samples at which each pending ordered utterance was decided
        self._held: deque[Metrics] = deque()  # metrics waiting for those utterances
        self._t0 = 0.0
        self._stop = threading.Event()
        self.position = 0  # samples consumed: the call-time clock

    def inject(self, make: Callable[[float, float], list[Event]]) -> None:
        """Emit events made at the current call time (`make(t, wall)`), e.g. from a key the agent pressed.

        Safe from any thread; the events pass through the stages and reach the sinks like any other.
        """
        with self._lock:
            for event in make(self._t(self.position), self._wall()):
                self._emit(event)

    def stop(self) -> None:
        """Ask `run` to end the call after the current block (safe from any thread)."""
        self._stop.set()

    def run(self) -> CallEnded:
        """Process the whole source; returns the `call.ended` event it emitted last."""
        cfg = self.cfg
        self._t0 = time.monotonic()
        fronts = {role: RoleFrontEnd(role, cfg, RATE) for role in self.roles}
        talk = dict.fromkeys(self.roles, 0.0)
        self._emit(
            CallStarted(
                self.call_id, 0.0, self._wall(), cfg.call.agent_id, {r: {"channel": c} for r, c in self.roles.items()},
                RATE, self.source_name, self.transcriber.name, getattr(self.source, "diarization", None),
            )
        )
        worker = SttWorker(self.transcriber, self._on_words, cfg.stt.final_queue)
        worker.start()
        silence_s = 0.0
        try:
            for block in self._blocks(fronts):
                readings = {}
                for role, front in fronts.items():
                    readings[role] = reading = front.push(block.roles[role][: block.length])
                    for utt in reading.utterances:
                        if utt.ordered:
                            self._submit_ordered(worker, utt)
                        elif self.partials:
                            worker.submit(utt)
                    if reading.speaking:
                        talk[role] += block.length / RATE
                speaking = {r: reading.speaking for r, reading in readings.items()}
                self.position = block.start + block.length
                silence_s = 0.0 if any(speaking.values()) else silence_s + block.length / RATE
                self._emit_in_order(
                    Metrics(
                        self.call_id, self._t(self.position), self._wall(),
                        {
                            r: RoleMetrics(loudness_lufs=round(reading.lufs, 1), speaking=reading.speaking,
                                           agitation=reading.agitation)
                            for r, reading in readings.items()
                        },
                        overlap=len(speaking) > 1 and all(speaking.values()),
                        silence_s=round(silence_s, 2),
                    )
                )
                self._source_status()
                if worker.error is not None or self._stop.is_set():
                    break
            for front in fronts.values():
                for utt in front.flush():
                    self._submit_ordered(worker, utt)
        finally:
            worker.close()
        with self._lock:
            held, self._held = list(self._held), deque()
        for m in held:  # only if the worker failed before finishing its finals
            self._emit(m)
        if worker.error is not None:
            raise PipelineError(f"speech-to-text failed: {worker.error}")
        total = sum(talk.values())
        ended = CallEnded(
            self.call_id, self._t(self.position), self._wall(), duration=self._t(self.position), peak_heat=None,
            nudges_raised=0, nudges_followed=0,
            talk_ratio=round(talk["agent"] / total, 3) if total and "agent" in talk else None,
            error=getattr(self.source, "error", None),
        )
        self._emit(ended)
        return ended

    # A source may say more about itself: `diarization` (how a mono recording was split, for
    # call.started), `read_ahead` (blocks it can hand over at once), `pop_status`/`overflows` and
    # `error` (a live device's changes; where a damaged file stopped).

    def _blocks(self, fronts: dict[str, RoleFrontEnd]) -> Iterator[AudioBlock]:
        """The source's blocks; a source that has audio ahead (`read_ahead` > 1 blocks, a file
        replayed as fast as possible) has each group's VAD run at once, which gives the same numbers."""
        ahead = getattr(self.source, "read_ahead", 1)
        blocks = iter(self.source)
        while group := list(itertools.islice(blocks, ahead)):
            if len(group) > 1:
                for role, front in fronts.items():
                    front.look_ahead(np.concatenate([b.roles[role][: b.length] for b in group]))
            yield from group

    def _source_status(self) -> None:
        """Pass on what a live source reports: a device lost, retried, resumed; audio dropped."""
        pop = getattr(self.source, "pop_status", None)
        if pop is None:
            return
        for state, message in pop():
            self._emit(Status(self.call_id, self._t(self.position), self._wall(), state, message, self.source.overflows))

    def _submit_ordered(self, worker: SttWorker, utt: Utterance) -> None:
        with self._lock:
            self._in_flight.append(self.position)
        worker.submit(utt)

    def _emit_in_order(self, metrics: Metrics) -> None:
        """Send metrics now, or hold them until the ordered utterances decided before them are transcribed.

        This gives the coach the same sequence of events at any replay speed (each final and pause
        partial, then the measurements that follow it in call time), without making the audio
        thread wait for the model.
        """
        with self._lock:
            if self._in_flight:
                self._held.append(metrics)
            else:
                self._emit(metrics)

    def _release(self) -> None:
        """An ordered utterance is out: send the held metrics that no pending one precedes."""
        with self._lock:  # re-entrant: held metrics go out before any newer ones can
            self._in_flight.popleft()
            limit = self._in_flight[0] / RATE if self._in_flight else float("inf")
            while self._held and self._held[0].t < limit:
                self._emit(self._held.popleft())

    def _on_words(self, utt: Utterance, raw: list[RawWord]) -> None:
        """Runs on the STT thread: turn the model's words into a transcript event in call time."""
        if utt.ordered:
            try:
                if raw:
                    self._emit(self._transcript(utt, raw))
            finally:
                self._release()
        else:
            self._emit(self._transcript(utt, raw))

    def _transcript(self, utt: Utterance, raw: list[RawWord]) -> TranscriptPartial:
        start, end = utt.start / RATE, utt.end / RATE
        words = [
            Word(w.text, round(min(end, start + w.start), 3), round(min(end, start + w.end), 3), round(w.p, 3))
            for w in raw
        ]
        text = "".join(w.raw or f" {w.text}" for w in raw).strip()
        kind = TranscriptFinal if utt.final else TranscriptPartial
        return kind(
            self.call_id, self._t(utt.end), self._wall(), utt.role, text, round(start, 3), round(end, 3), words, utt.pause,
        )

    def _emit(self, event: Event) -> None:
        with self._lock:
            events = [event]
            for stage in self.stages:
                events = [out for e in events for out in stage(e)]
            for e in events:
                for sink in self.sinks:
                    sink(e)

    def _wall(self) -> float:
        return round(time.monotonic() - self._t0, 3)

    @staticmethod
    def _t(samples: int) -> float:
        return round(samples / RATE, 3)
