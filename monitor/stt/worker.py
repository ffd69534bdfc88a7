"""The one STT thread: it owns the model and works through utterances, finals first.

Two kinds of work, with a written backpressure policy each:
- *ordered* utterances (finals, and the pause partial the segmenter offers early in every pause)
  are what the coach decides on, so none may be lost or reordered at any replay speed: they wait
  in one FIFO of `final_queue`; when it is full `submit` blocks the producer (live capture then
  counts overflow at its own bounded queue). A final whose audio is exactly that of the utterance
  decoded before it for the role (its pause partial, or the early display partial of its pause)
  reuses that decoding, so a fast replay pays for the pause partial only where speech resumed,
  and a paced run's final is out as soon as the hangover ends;
- periodic partials are for display only and never queued: one slot per role holds the newest, a
  newer one replaces it, and one whose utterance has already been finalised is dropped unheard
  (stale); one finalised while being transcribed is still delivered, since it is ready first. A
  slow CPU therefore loses display partials first and the lag cannot grow without bound.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np

from .model import RawWord
from .segmenter import Utterance

log = logging.getLogger(__name__)


class Transcriber(Protocol):
    """What the worker needs of a model: words for one utterance."""

    name: str

    def transcribe(self, audio: np.ndarray) -> list[RawWord]:
        """Words with times relative to the start of `audio`."""
        ...


ResultFn = Callable[[Utterance, list[RawWord]], None]


class SttWorker:
    """Runs `transcriber` on its own thread and hands each result to `on_result` there."""

    def __init__(self, transcriber: Transcriber, on_result: ResultFn, final_queue: int = 64) -> None:
        self.transcriber = transcriber
        self.on_result = on_result
        self._finals: deque[Utterance] = deque()
        self._max_finals = final_queue
        self._partials: dict[str, Utterance] = {}
        self._finalised: dict[str, int] = {}  # role -> highest utterance seq finalised
        self._cond = threading.Condition()
        self._closing = False
        self.partials_dropped = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="stt-worker", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def submit(self, utt: Utterance) -> None:
        """Queue an ordered utterance (blocking while the queue is full) or offer a display partial (never blocks)."""
        with self._cond:
            if utt.ordered:
                if utt.final:
                    self._finalised[utt.role] = max(self._finalised.get(utt.role, -1), utt.seq)
                old = self._partials.get(utt.role)
                if old is not None and old.seq <= utt.seq:  # the ordered one covers at least as much
                    del self._partials[utt.role]
                    self.partials_dropped += 1
                while len(self._finals) >= self._max_finals and self.error is None:
                    self._cond.wait()
                self._finals.append(utt)
            else:
                if self._partials.get(utt.role) is not None:
                    self.partials_dropped += 1
                self._partials[utt.role] = utt
            self._cond.notify_all()

    def close(self) -> None:
        """Finish every queued ordered utterance, then stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    def _next(self) -> Utterance | None:
        with self._cond:
            while not self._finals and not self._partials and not self._closing:
                self._cond.wait()
            if self._finals:
                utt = self._finals.popleft()
                self._cond.notify_all()
            elif self._partials and not self._closing:
                # Oldest audio first: a speaker's early partial, whose final is due, before another's growing one.
                utt = self._partials.pop(min(self._partials.values(), key=lambda u: u.end).role)
            else:
                return None
            return utt

    def _stale(self, utt: Utterance) -> bool:
        with self._cond:
            return not utt.ordered and self._finalised.get(utt.role, -1) >= utt.seq

    def _run(self) -> None:
        # Each role's latest decoding, by extent: an utterance over the same audio (the final after
        # its pause partial, or after the early display partial of its pause) reuses the words, since
        # the same samples give the same words; so no extra pass, and the final is out sooner.
        decoded: dict[str, tuple[tuple[int, int, int], list[RawWord]]] = {}
        while (utt := self._next()) is not None:
            try:
                if self._stale(utt):
                    self.partials_dropped += 1
                    continue
                key = (utt.seq, utt.start, utt.end)
                last = decoded.get(utt.role)
                if last is not None and last[0] == key:
                    words = last[1]
                else:
                    words = self.transcriber.transcribe(utt.audio)
                    decoded[utt.role] = (key, words)
                # A display partial finalised while it was being transcribed still goes out: it is
                # ready now, its final is not, and the screen shows it sooner.
                self.on_result(utt, words)
            except BaseException as exc:  # noqa: BLE001 - handed to the pipeline, which reports it
                log.exception("STT worker failed")
                with self._cond:
                    self.error = exc
                    self._finals.clear()
                    self._partials.clear()
                    self._cond.notify_all()
                return
