"""Evaluation-only voice measures: what scripts/eval-agitation and its tests need beyond the monitor.

The monitor's `VoiceFeatures` (monitor/audio/agitation.py) takes each block's loudness and
speech verdict from the pipeline and measures no pitch. An evaluation clip has no pipeline, so
`ClipVoice` owns what the pipeline would give it and adds what only the evaluation reports:

- loudness: its own `LoudnessMeter` (K-weighted, 400 ms window, as the pipeline's default);
- speech: the caller's verdict (e.g. the Silero VAD), or by default a loudness gate: the block's
  loudness is at least `margin_db` above the clip's noise floor (5th percentile of the last
  `floor_s` of block loudness) and above `min_lufs`;
- pitch: F0 by YIN (40 ms frames every 20 ms, 60-550 Hz, threshold 0.2) in semitones re 100 Hz,
  on frames no more than 20 dB below the momentary loudness; `pitch` median, `pitch_p90`,
  `pitch_range` (90th - 10th percentile), `voiced` the share of speech frames with a pitch.
  The agitation score gives pitch no weight (see monitor/audio/agitation.py); it is reported
  for comparison.

`baseline_of` builds a speaker's baseline (medians and MADs) from several clips' features.
Import it with scripts/ and the repository on `sys.path` (scripts/eval-agitation puts both there).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from monitor.audio.agitation import FEATURES, RATE, VoiceFeatures
from monitor.audio.levels import LoudnessMeter

PITCH_FRAME_S = 0.040
PITCH_HOP_S = 0.020
F0_MIN, F0_MAX = 60.0, 550.0
YIN_THRESHOLD = 0.2


def yin(frames: np.ndarray, rate: int = RATE, threshold: float = YIN_THRESHOLD) -> np.ndarray:
    """F0 in Hz of each row of `frames` (YIN, de Cheveigné & Kawahara 2002); NaN where unvoiced.

    Rows must be longer than rate / F0_MIN samples; the difference function integrates over
    the row length minus the longest lag.
    """
    frames = np.atleast_2d(np.asarray(frames, dtype=np.float64))
    n, size = frames.shape
    max_lag = int(rate / F0_MIN)
    min_lag = max(2, int(rate / F0_MAX))
    w = size - max_lag
    if w <= 0:
        raise ValueError(f"pitch frames need more than {max_lag} samples")
    x = frames - frames.mean(axis=1, keepdims=True)
    nfft = 1 << int(math.ceil(math.log2(size + w)))
    corr = np.fft.irfft(np.fft.rfft(x, nfft) * np.conj(np.fft.rfft(x[:, :w], nfft)), nfft)[:, : max_lag + 1]
    cs = np.concatenate([np.zeros((n, 1)), np.cumsum(x * x, axis=1)], axis=1)
    lags = np.arange(max_lag + 1)
    d = np.maximum(cs[:, w : w + 1] + cs[:, lags + w] - cs[:, lags] - 2.0 * corr, 0.0)
    cmnd = np.ones_like(d)
    cum = np.cumsum(d[:, 1:], axis=1)
    cmnd[:, 1:] = np.where(cum > 0, d[:, 1:] * lags[1:] / np.maximum(cum, 1e-300), 1.0)
    f0 = np.full(n, np.nan)
    for i in range(n):
        c = cmnd[i]
        below = np.flatnonzero(c[min_lag:max_lag] < threshold)
        if len(below) == 0:
            continue
        t = int(below[0]) + min_lag
        while t + 1 < max_lag and c[t + 1] < c[t]:
            t += 1
        y0, y1, y2 = c[t - 1], c[t], c[t + 1]
        den = y0 - 2.0 * y1 + y2
        shift = min(0.5, max(-0.5, 0.5 * (y0 - y2) / den)) if den > 0 else 0.0
        f0[i] = rate / (t + shift)
    return f0


class ClipVoice:
    """`VoiceFeatures` for a clip on its own: its own loudness meter and speech gate, plus pitch.

    Same interface as before the monitor's meter moved out: `push(block, speech=None)`,
    `features(last_s=None)` (the monitor's keys plus pitch, pitch_p90, pitch_range, voiced),
    `speech_s`.
    """

    def __init__(self, rate: int = RATE, *, keep_s: float = 120.0, margin_db: float = 10.0,
                 min_lufs: float = -60.0, floor_s: float = 30.0) -> None:
        self.rate = rate
        self.margin_db = margin_db
        self.min_lufs = min_lufs
        self.floor_s = floor_s
        self.keep_s = keep_s
        self.voice = VoiceFeatures(rate, keep_s=keep_s, min_lufs=min_lufs)
        self.meter = LoudnessMeter(rate, window_s=0.4)
        self._levels: deque[tuple[float, float]] = deque()  # (block seconds, lufs) for the noise floor
        self._levels_s = 0.0
        self._pitch: deque[tuple[float, np.ndarray, int]] = deque()  # (speech s, semitones, frames judged)
        self._pitch_s = 0.0
        self._frame = round(PITCH_FRAME_S * rate)
        self._hop = round(PITCH_HOP_S * rate)
        self._tail = np.zeros(0)

    @property
    def speech_s(self) -> float:
        """All speech heard, including what is no longer kept."""
        return self.voice.speech_s

    def floor(self) -> float:
        """The clip's noise floor (LUFS): 5th percentile of the recent block loudness."""
        if not self._levels:
            return self.min_lufs
        return float(np.percentile([lv for _, lv in self._levels], 5))

    def push(self, block: np.ndarray, speech: bool | None = None) -> bool:
        """Feed one block; `speech` overrides the loudness gate (e.g. a VAD's verdict). True if it counted as speech."""
        x = np.asarray(block, dtype=np.float64).reshape(-1)
        if len(x) == 0:
            return False
        dur = len(x) / self.rate
        lufs = float(self.meter.push(x))
        self._levels.append((dur, lufs))
        self._levels_s += dur
        while self._levels_s - self._levels[0][0] >= self.floor_s:
            self._levels_s -= self._levels.popleft()[0]
        # pitch frames completed by this block (frames run across block boundaries)
        audio = np.concatenate([self._tail, x])
        n = max(0, (len(audio) - self._frame) // self._hop + 1)
        self._tail = audio[n * self._hop :]
        if speech is None:
            speech = lufs >= max(self.min_lufs, self.floor() + self.margin_db)
        if not self.voice.push(x, lufs, bool(speech)):
            return False
        f0 = np.zeros(0)
        if n:
            idx = np.arange(self._frame)[None, :] + self._hop * np.arange(n)[:, None]
            frames = audio[idx]
            level = 10.0 * np.log10(np.maximum(np.mean(frames * frames, axis=1), 1e-12))
            hz = yin(frames, self.rate)
            hz[level < lufs - 20.0] = np.nan
            f0 = 12.0 * np.log2(hz[np.isfinite(hz)] / 100.0)
        self._pitch.append((dur, f0, n))
        self._pitch_s += dur
        while self._pitch_s - self._pitch[0][0] >= self.keep_s - 1e-9:  # the same blocks VoiceFeatures keeps
            self._pitch_s -= self._pitch.popleft()[0]
        return True

    def features(self, last_s: float | None = None) -> dict[str, float]:
        """The monitor's measures over the kept speech (or its last `last_s` seconds), plus pitch."""
        out = self.voice.features(last_s)
        kept: list[tuple[np.ndarray, int]] = []
        got = 0.0
        for dur, f0, frames in reversed(self._pitch):
            if last_s is not None and got >= last_s - 1e-9:
                break
            kept.append((f0, frames))
            got += dur
        if not kept:
            return out
        f0 = np.concatenate([f for f, _ in kept])
        frames = sum(n for _, n in kept)
        if frames:
            out["voiced"] = len(f0) / frames
        if len(f0) >= 5:
            p10, p50, p90 = np.percentile(f0, [10, 50, 90])
            out["pitch"] = float(p50)
            out["pitch_p90"] = float(p90)
            out["pitch_range"] = float(p90 - p10)
        return out


def baseline_of(samples: list[dict[str, float]]) -> dict[str, float]:
    """A baseline from several feature dicts of one speaker: per-feature median, and MAD as `<name>_spread`."""
    out: dict[str, float] = {}
    for name in FEATURES:
        v = np.array([s[name] for s in samples if name in s and math.isfinite(s[name])])
        if len(v):
            med = float(np.median(v))
            out[name] = med
            out[f"{name}_spread"] = float(np.median(np.abs(v - med)))
    out["speech_s"] = float(sum(s.get("speech_s", 0.0) for s in samples))
    return out
