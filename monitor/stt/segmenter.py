"""The utterance policy: VAD probabilities in, partial and final utterances out. Pure, no I/O.

Hysteresis as in Silero's own `get_speech_timestamps`: speech starts at `threshold`, and ends
once the probability has stayed under `neg_threshold` for the hangover (`min_silence_ms`).
Utterances are padded so no word is clipped, cut at `max_utterance_s` so a monologue still
gets transcribed, and a partial is offered every `partial_interval_s` while one grows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import VadConfig
from .vad import FRAME


@dataclass(frozen=True)
class Utterance:
    """A stretch of one role's speech, in call-time samples; `final` once it has ended."""

    role: str
    seq: int
    start: int
    end: int
    audio: np.ndarray
    final: bool
    pause: bool = False  # a partial sent because the speaker paused: their words so far, likely all of them

    @property
    def ordered(self) -> bool:
        """Whether the coach decides on it: finals and pause partials, made in every replay mode at the same call time."""
        return self.final or self.pause


class Segmenter:
    """Cuts one role's stream into utterances."""

    def __init__(self, role: str, cfg: VadConfig, rate: int = 16000) -> None:
        self.role = role
        self.cfg = cfg
        self._pad = cfg.speech_pad_ms * rate // 1000
        self._min_silence = cfg.min_silence_ms * rate // 1000
        self._end_partial = cfg.end_partial_ms * rate // 1000
        self._pause_partial_sent = False
        # Not before the pad is in the buffer: the early decoding must cover the final's very audio.
        self._early = max(cfg.early_decode_ms, cfg.speech_pad_ms) * rate // 1000 if cfg.early_decode_ms else 0
        self._early_sent = False
        self._min_speech = cfg.min_speech_ms * rate // 1000
        self._max_len = int(cfg.max_utterance_s * rate)
        self._partial_every = int(cfg.partial_interval_s * rate)
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0
        self._frame_pos = 0  # call-time sample where the next VAD frame starts
        self.speaking = False
        self._start = 0
        self._silence_from: int | None = None
        self._last_pause: int | None = None  # where the latest dip under neg_threshold began
        self._next_partial = 0
        self._seq = 0

    def push(self, samples: np.ndarray, probs: np.ndarray) -> list[Utterance]:
        """Feed the block's samples and the VAD probabilities of the frames it completed."""
        self._buf = np.concatenate([self._buf, samples])
        out: list[Utterance] = []
        for p in probs:
            start, end = self._frame_pos, self._frame_pos + FRAME
            self._frame_pos = end
            out.extend(self._frame(float(p), start, end))
        if not self.speaking:
            self._trim(self._frame_pos - self._pad)
        return out

    def flush(self) -> list[Utterance]:
        """The stream ended: finish the utterance in progress, if any."""
        if not self.speaking:
            return []
        end = self._buf_start + len(self._buf)
        if self._silence_from is not None:
            end = min(end, self._silence_from + self._pad)
        return self._finish(end)

    def _frame(self, p: float, start: int, end: int) -> list[Utterance]:
        cfg = self.cfg
        if not self.speaking:
            if p >= cfg.threshold:
                self.speaking = True
                self._start = max(self._buf_start, start - self._pad)
                self._silence_from = self._last_pause = None
                self._pause_partial_sent = self._early_sent = False
                self._next_partial = self._start + self._partial_every
            return []
        if p >= cfg.threshold:
            self._silence_from = None
            self._pause_partial_sent = self._early_sent = False
        elif p < cfg.neg_threshold and self._silence_from is None:
            self._silence_from = self._last_pause = start
        if self._silence_from is not None and end - self._silence_from >= self._min_silence:
            return self._finish(self._silence_from + self._pad)
        if (
            self._end_partial and self._silence_from is not None and not self._pause_partial_sent
            and end - self._silence_from >= self._end_partial
        ):
            # Early in a pause, offer the whole utterance as a partial: a live coach can act on
            # its confident words before the hangover ends and the final is decoded. Not for a
            # blip that will not make a final either.
            self._pause_partial_sent = True
            if self._silence_from - self._start - self._pad >= self._min_speech:
                return [self._utterance(self._start, self._silence_from + self._pad, final=False, pause=True)]
        if (
            self._early and self._silence_from is not None and not self._early_sent
            and end - self._silence_from >= self._early
        ):
            # Early in a pause, a display partial of exactly the audio the final will have if the
            # speaker stops here: decoded while the hangover runs, its words serve the final (the
            # worker reuses them), so a paced run's verdict comes one Whisper pass sooner.
            self._early_sent = True
            # It shows the text as a periodic partial would, so the next one is due a whole interval
            # later: where the speaker goes on, the early decoding costs no extra Whisper pass.
            self._next_partial = end + self._partial_every
            if self._silence_from - self._start - self._pad >= self._min_speech:
                return [self._utterance(self._start, self._silence_from + self._pad, final=False)]
        if end - self._start >= self._max_len:
            # A monologue: cut at its latest pause if that keeps most of it, else right here,
            # and go on with a new utterance from the cut.
            pause = self._last_pause
            cut = pause if pause is not None and pause - self._start >= self._max_len // 2 else end
            self._silence_from = None
            done = self._finish(cut)
            self.speaking, self._start, self._next_partial = True, cut, end + self._partial_every
            self._last_pause = None
            self._trim(cut)
            return done
        if end >= self._next_partial and self._silence_from is None:
            # No partial once a pause has begun: the final is due within the hangover, and a
            # partial started now would only delay it in the model's queue.
            self._next_partial = end + self._partial_every
            return [self._utterance(self._start, end, final=False)]
        return []

    def _finish(self, end: int) -> list[Utterance]:
        speech = (self._silence_from if self._silence_from is not None else end) - self._start - self._pad
        self.speaking = False
        self._silence_from = None
        if speech < self._min_speech:
            # A click or a cough: drop it, but the sequence number still moves on so a
            # partial already shown for it is superseded.
            self._seq += 1
            return []
        utt = self._utterance(self._start, end, final=True)
        self._seq += 1
        return [utt]

    def _utterance(self, start: int, end: int, final: bool, pause: bool = False) -> Utterance:
        end = min(end, self._buf_start + len(self._buf))
        audio = self._buf[start - self._buf_start : end - self._buf_start].copy()
        return Utterance(self.role, self._seq, start, end, audio, final, pause)

    def _trim(self, keep_from: int) -> None:
        drop = keep_from - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start += drop
