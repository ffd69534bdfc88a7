"""The STT lanes: threads that share the model and work through utterances, finals first.

Two kinds of work, with a written backpressure policy each:
- *ordered* utterances (finals, and the pause partial the segmenter offers early in every pause) are
  what the coach decides on, so none may be lost or reordered at any replay speed: they wait in one
  FIFO, are decoded one at a time and handed on in the order they were submitted; while
  `final_queue` of them are not yet handed on, `submit` blocks the producer (live capture then
  counts overflow at its own bounded queue). An utterance over exactly the audio of one already
  decoded, or being decoded, for the role (a final after its pause partial, or after the early
  display partial of its pause) reuses those words instead of a second pass, so a fast replay pays
  for the pause partial only where speech resumed, and a paced run's final is out as soon as the
  hangover ends;
- display partials are never queued: one slot per role holds the newest, a newer one replaces it,
  and one whose utterance has already been finalised is dropped unheard (stale); one finalised while
  being transcribed is still shown unless its final was shown first. A periodic partial is decoded
  only when the model is otherwise idle, so a slow CPU loses display partials first and the lag
  cannot grow without bound.

The second lane (`stt.decoders = 2`, faster-whisper's `num_workers`) is for what decides: a final,
or the early decoding of a pause that its final reuses, starts at once even while a periodic
partial is being decoded (on two cores two passes at once take about 1.4x one alone, against
waiting for the partial and then a pass). Ordered utterances are still decoded one at a time: a
second pass at once holds another ~100 MB of attention buffers, more than a fast replay's memory
budget allows. Which lane decodes an utterance changes nothing in its words.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Protocol

import numpy as np

from .model import RawWord
from .segmenter import Utterance

log = logging.getLogger(__name__)

Extent = tuple[str, int, int, int]  # role, seq, start, end: the same extent is the same audio
_REMEMBERED = 16  # decodings kept for reuse; a final reuses one decoded at most a pause earlier


class Transcriber(Protocol):
    """What the worker needs of a model: words for one utterance."""

    name: str
    parallel: int  # how many `transcribe` calls may run at once, each on its own thread

    def transcribe(self, audio: np.ndarray) -> list[RawWord]:
        """Words with times relative to the start of `audio`."""
        ...


ResultFn = Callable[[Utterance, list[RawWord]], None]


def _extent(utt: Utterance) -> Extent:
    return (utt.role, utt.seq, utt.start, utt.end)


class SttWorker:
    """Runs `transcriber` on up to two threads (`transcriber.parallel`); hands each result to `on_result`, one at a time."""

    def __init__(self, transcriber: Transcriber, on_result: ResultFn, final_queue: int = 64) -> None:
        self.transcriber = transcriber
        self.on_result = on_result
        self._ordered: deque[tuple[int, Utterance]] = deque()  # (ticket, utterance) not yet started
        self._tickets = 0  # ordered utterances submitted
        self._handed = 0  # ordered utterances handed on: the next ticket due
        self._ready: dict[int, tuple[Utterance, list[RawWord]]] = {}  # decoded, waiting for an earlier ticket
        self._max_finals = final_queue
        self._partials: dict[str, Utterance] = {}
        self._finalised: dict[str, int] = {}  # role -> highest utterance seq submitted as final
        self._shown: dict[str, int] = {}  # role -> highest utterance seq whose final was handed on
        self._decoded: OrderedDict[Extent, list[RawWord]] = OrderedDict()
        self._busy: set[Extent] = set()  # being decoded now
        self._running = {"ordered": 0, "early": 0, "periodic": 0}  # passes in the model now, by kind
        self._lanes = min(2, max(1, transcriber.parallel))
        self._cond = threading.Condition()
        self._hand_lock = threading.Lock()  # one result handed on at a time, ordered ones in ticket order
        self._closing = False
        self.partials_dropped = 0
        self.error: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._run, name=f"stt-lane-{i}", daemon=True)
            for i in range(self._lanes)
        ]

    def start(self) -> None:
        """Start the lanes."""
        for thread in self._threads:
            thread.start()

    def submit(self, utt: Utterance) -> None:
        """Queue an ordered utterance (blocking while too many are pending) or offer a display partial (never blocks)."""
        with self._cond:
            if utt.ordered:
                if utt.final:
                    self._finalised[utt.role] = max(self._finalised.get(utt.role, -1), utt.seq)
                old = self._partials.get(utt.role)
                if old is not None and old.seq <= utt.seq:  # the ordered one covers at least as much
                    del self._partials[utt.role]
                    self.partials_dropped += 1
                while self._tickets - self._handed >= self._max_finals and self.error is None:
                    self._cond.wait()
                self._ordered.append((self._tickets, utt))
                self._tickets += 1
            else:
                if self._partials.get(utt.role) is not None:
                    self.partials_dropped += 1
                self._partials[utt.role] = utt
            self._cond.notify_all()

    def close(self) -> None:
        """Finish every queued ordered utterance, then stop the lanes."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()

    def _take(self) -> tuple[int | None, Utterance, list[RawWord] | None] | None:
        """The next job: (ticket or None for a display partial, utterance, words if already decoded).

        What decides goes first and never waits behind a display partial: an ordered utterance
        (one at a time), then the early decoding of a pause (whose words its final reuses), on any
        free lane; a periodic partial only when the model is otherwise idle, so it takes no CPU
        from either.
        """
        with self._cond:
            while self.error is None:
                running = sum(self._running.values())
                free = running < self._lanes
                for i, (ticket, utt) in enumerate(self._ordered if free and not self._running["ordered"] else ()):
                    extent = _extent(utt)
                    if extent in self._busy:  # another lane is decoding this audio: wait for its words
                        continue
                    del self._ordered[i]
                    return self._start(ticket, utt, "ordered")
                # Oldest audio first: a speaker's early partial, whose final is due, before another's growing one.
                for utt in sorted(self._partials.values(), key=lambda u: (not u.early, u.end)):
                    if self._closing or not (free if utt.early else running == 0):
                        continue
                    del self._partials[utt.role]
                    if self._finalised.get(utt.role, -1) >= utt.seq or _extent(utt) in self._busy:
                        self.partials_dropped += 1  # stale, or its words are on their way anyway
                        break
                    return self._start(None, utt, "early" if utt.early else "periodic")
                else:
                    if self._closing and not self._ordered:
                        return None
                    self._cond.wait()
            return None

    def _start(self, ticket: int | None, utt: Utterance, kind: str) -> tuple[int | None, Utterance, list[RawWord] | None]:
        words = self._decoded.get(_extent(utt))
        if words is None:  # a pass to make: count it
            self._busy.add(_extent(utt))
            self._running[kind] += 1
        return ticket, utt, words

    def _run(self) -> None:
        while (job := self._take()) is not None:
            ticket, utt, words = job
            try:
                fresh = words is None
                if words is None:
                    words = self.transcriber.transcribe(utt.audio)
                with self._cond:
                    if fresh:
                        self._busy.discard(_extent(utt))
                        self._running["ordered" if ticket is not None else "early" if utt.early else "periodic"] -= 1
                        self._decoded[_extent(utt)] = words
                        while len(self._decoded) > _REMEMBERED:
                            self._decoded.popitem(last=False)
                    if ticket is not None:
                        self._ready[ticket] = (utt, words)
                    self._cond.notify_all()
                self._hand_on(utt if ticket is None else None, words)
            except BaseException as exc:  # noqa: BLE001 - handed to the pipeline, which reports it
                log.exception("STT worker failed")
                with self._cond:
                    self.error = self.error or exc
                    self._ordered.clear()
                    self._partials.clear()
                    self._cond.notify_all()
                return

    def _hand_on(self, partial: Utterance | None, words: list[RawWord]) -> None:
        """Hand on a display partial, or every ordered result now due, in ticket order."""
        with self._hand_lock:
            if partial is not None:
                # A display partial finalised while it was being transcribed still goes out (it is
                # ready, its final may not be), unless its final is already on the screen.
                with self._cond:
                    shown = self._shown.get(partial.role, -1) >= partial.seq
                    self.partials_dropped += shown
                if not shown:
                    self.on_result(partial, words)
                return
            while True:
                with self._cond:
                    item = self._ready.pop(self._handed, None)
                    if item is None:
                        return
                    self._handed += 1
                    if item[0].final:
                        self._shown[item[0].role] = max(self._shown.get(item[0].role, -1), item[0].seq)
                    self._cond.notify_all()
                self.on_result(*item)
