"""Acoustic agitation: how far a speaker's voice is raised above their own usual voice.

What: `VoiceFeatures` takes one role's audio in 100 ms blocks (16 kHz mono float32, as the
pipeline reads it) and keeps a few measures of each block of speech; `features()` summarises
the speech heard so far (or its last few seconds) as a small dict; `agitation_score()` compares
such a dict with the same speaker's baseline dict and returns one number: about 0 for the
speaker's usual voice, positive when the voice is raised (1.0 is roughly "10 dB louder, with
the brighter, flatter spectrum that goes with it").

Why these measures: raising the voice in anger takes vocal effort, and effort shows as
(1) loudness, and (2) a flatter spectral tilt -- the voice source gets more high-frequency
energy, so the share of energy above 1 kHz and the spectral centroid go up. The spectral
measures survive what loudness does not: line gain, automatic gain control, headsets at
different distances. Pitch rises too, and is measured, but on RAVDESS it adds nothing once
loudness and tilt are known (angry at normal intensity is often said low and hard), so its
weight is 0; it stays in the dict for display and future tuning.

Why per speaker: levels differ by 20 dB between lines and voices differ by an octave, so no
measure is judged on an absolute scale. The score is a weighted sum of differences from the
speaker's baseline (their median feature values, e.g. over their first ~20 s of speech),
each divided by a fixed, documented scale (SCALES); a baseline may carry its own spreads
(`<name>_spread`, e.g. MADs) to divide by instead.

Measures (per 100 ms block; only blocks with speech in them count):
- speech: the block's momentary loudness (`LoudnessMeter`, K-weighted, 400 ms window) is at
  least `margin_db` above the channel's noise floor (5th percentile of the last 30 s of block
  loudness) and above `min_lufs`; or the caller says so (`push(block, speech=...)`, e.g. from
  the Silero VAD), still above `min_lufs`.
- loudness: that momentary loudness (LUFS). `loudness` is its median over speech blocks,
  `loudness_p90` its 90th percentile.
- alpha: alpha ratio, dB of energy in 1-5 kHz over 50 Hz-1 kHz (Hann-windowed 32 ms frames
  averaged over the block), and brightness: the spectral centroid over 50 Hz-8 kHz in octaves
  re 1 kHz; both only from blocks whose own level is within 10 dB of the momentary loudness
  (the loud part of speech, not the decay of the 400 ms window into a pause). Medians.
- pitch: F0 by YIN (40 ms frames every 20 ms, 60-550 Hz, threshold 0.2) in semitones re 100 Hz,
  on frames no more than 20 dB below the momentary loudness; `pitch` median, `pitch_p90`,
  `pitch_range` (90th - 10th percentile), `voiced` the share of speech frames with a pitch.

Weights (WEIGHTS, SCALES) were chosen on RAVDESS (scripts/eval-agitation): each of loudness,
alpha and brightness counts equally after dividing by about its spread across a speaker's
neutral-to-angry clips, rounded (10 dB, 4 dB, 0.5 octave); a leave-one-actor-out logistic
regression on the same three measures gives about the same relative weights and AUC.

RAVDESS (scripts/eval-agitation; 48 angry vs 36 neutral/calm clips, 12 actors, each clip's
~2 s of speech scored against the actor's median over all 8 of their clips), AUC
all / angry-normal / angry-strong:
    agitation score (fixed SCALES)          0.994 / 0.987 / 1.000
    agitation score (actor's MAD as scale)  0.998 / 0.995 / 1.000
    logistic regression, leave-one-actor-out 0.991 / 0.982 / 1.000
    loudness alone                          0.972 / 0.944 / 1.000  (not normalised: 0.934 / 0.868)
    alpha 0.979 / 0.957, brightness 0.976 / 0.951, pitch 0.860 / 0.720 (all / normal)
The three measures were picked by looking at these figures (the weights were not fitted), so
read them as in-sample for the choice of measures; the leave-one-actor-out regression is the
out-of-sample check. The baseline matters: from ~2 s of one random other clip of the actor the
AUC falls to 0.87 / 0.77, from ~8 s to 0.95 / 0.90, from ~14 s to 0.99 / 0.98.

Live use: learn the baseline as `features()` over a speaker's first ~20 s of speech (at least
~10 s), then score `features(last_s=3)` against it every block or second.

Pure numpy/scipy; no clocks, no I/O: the same audio gives the same numbers.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..audio.levels import LoudnessMeter

RATE = 16000
PITCH_FRAME_S = 0.040
PITCH_HOP_S = 0.020
F0_MIN, F0_MAX = 60.0, 550.0
YIN_THRESHOLD = 0.2
SPEC_FRAME_S = 0.032

# score = sum(WEIGHTS[k] * (features[k] - baseline[k]) / SCALES[k]) / sum(WEIGHTS used)
WEIGHTS: dict[str, float] = {"loudness": 1.0, "alpha": 1.0, "brightness": 1.0}
SCALES: dict[str, float] = {
    "loudness": 10.0,  # dB
    "loudness_p90": 10.0,  # dB
    "alpha": 4.0,  # dB
    "brightness": 0.5,  # octaves
    "pitch": 5.0,  # semitones
    "pitch_p90": 5.0,  # semitones
    "pitch_range": 3.0,  # semitones
    "voiced": 0.1,  # share of frames
}
FEATURES = tuple(SCALES)
MIN_SPREAD = 0.25  # a baseline's own spread is used only down to this share of SCALES


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


@dataclass(frozen=True)
class _Block:
    lufs: float
    loud: bool  # own level within 10 dB of the momentary loudness: spectral measures count
    alpha: float
    brightness: float
    f0: np.ndarray  # semitones re 100 Hz of its voiced frames
    frames: int  # pitch frames judged (voiced or not)


class VoiceFeatures:
    """Voice measures of one speaker's speech, fed 100 ms blocks of 16 kHz mono audio.

    Keeps the measures of the last `keep_s` seconds of speech (blocks without speech are not
    kept); `features()` summarises all of them, `features(last_s=4)` only the latest 4 s of speech.
    """

    def __init__(self, rate: int = RATE, *, keep_s: float = 120.0, margin_db: float = 10.0,
                 min_lufs: float = -60.0, floor_s: float = 30.0, pitch: bool = True) -> None:
        self.pitch = pitch  # pitch (YIN) is measured for evaluation; the score does not use it
        self.rate = rate
        self.margin_db = margin_db
        self.min_lufs = min_lufs
        self.keep_s = keep_s
        self.floor_s = floor_s
        self.meter = LoudnessMeter(rate, window_s=0.4)
        self.speech_s = 0.0  # all speech heard, including what is no longer kept
        self._blocks: deque[tuple[float, _Block]] = deque()  # (seconds of speech, measures)
        self._kept_s = 0.0
        self._levels: deque[tuple[float, float]] = deque()  # (block seconds, lufs) for the floor
        self._levels_s = 0.0
        self._frame = round(PITCH_FRAME_S * rate)
        self._hop = round(PITCH_HOP_S * rate)
        self._tail = np.zeros(0)
        self._spec_n = 1 << round(math.log2(SPEC_FRAME_S * rate))
        self._window = np.hanning(self._spec_n)
        f = np.fft.rfftfreq(self._spec_n, 1.0 / rate)
        self._low = (f >= 50.0) & (f < 1000.0)
        self._high = (f >= 1000.0) & (f < 5000.0)
        self._band = (f >= 50.0) & (f < 8000.0)
        self._freqs = f[self._band]

    # -- feeding --------------------------------------------------------------------------------

    def floor(self) -> float:
        """The channel's noise floor (LUFS): 5th percentile of the recent block loudness."""
        if not self._levels:
            return self.meter.floor
        return float(np.percentile([lv for _, lv in self._levels], 5))

    def push(self, block: np.ndarray, speech: bool | None = None) -> bool:
        """Feed one block; `speech` overrides the level gate (e.g. a VAD's verdict). True if it counted as speech."""
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
        speech = bool(speech) and lufs >= self.min_lufs
        if not speech:
            return False

        f0 = np.zeros(0)
        if n and self.pitch:
            idx = np.arange(self._frame)[None, :] + self._hop * np.arange(n)[:, None]
            frames = audio[idx]
            level = 10.0 * np.log10(np.maximum(np.mean(frames * frames, axis=1), 1e-12))
            hz = yin(frames, self.rate)
            hz[level < lufs - 20.0] = np.nan
            hz = hz[np.isfinite(hz)]
            f0 = 12.0 * np.log2(hz / 100.0)

        m = len(x) // self._spec_n
        seg = x[: m * self._spec_n].reshape(m, self._spec_n) if m else np.pad(x, (0, self._spec_n - len(x)))[None]
        power = np.sum(np.abs(np.fft.rfft(seg * self._window, axis=1)) ** 2, axis=0)
        low, high = float(power[self._low].sum()), float(power[self._high].sum())
        band = power[self._band]
        total = float(band.sum())
        own = 10.0 * math.log10(max(float(np.mean(x * x)), 1e-12))
        loud = total > 0 and low > 0 and high > 0 and own >= lufs - 10.0
        alpha = 10.0 * math.log10(high / low) if loud else math.nan
        bright = math.log2(float(np.dot(band, self._freqs)) / total / 1000.0) if loud else math.nan

        self.speech_s += dur
        self._blocks.append((dur, _Block(lufs, loud, alpha, bright, f0, n)))
        self._kept_s += dur
        while self._kept_s - self._blocks[0][0] >= self.keep_s - 1e-9:
            self._kept_s -= self._blocks.popleft()[0]
        return True

    # -- summary --------------------------------------------------------------------------------

    def features(self, last_s: float | None = None) -> dict[str, float]:
        """Measures over the kept speech (or its last `last_s` seconds); `speech_s` says how much.

        Keys absent when not measurable (no speech yet, no voiced frames).
        """
        blocks: list[_Block] = []
        got = 0.0
        for dur, b in reversed(self._blocks):
            if last_s is not None and got >= last_s - 1e-9:
                break
            blocks.append(b)
            got += dur
        out: dict[str, float] = {"speech_s": round(got, 3)}
        if not blocks:
            return out
        lufs = np.array([b.lufs for b in blocks])
        out["loudness"] = float(np.median(lufs))
        out["loudness_p90"] = float(np.percentile(lufs, 90))
        loud = [b for b in blocks if b.loud]
        if loud:
            out["alpha"] = float(np.median([b.alpha for b in loud]))
            out["brightness"] = float(np.median([b.brightness for b in loud]))
        f0 = np.concatenate([b.f0 for b in blocks])
        frames = sum(b.frames for b in blocks)
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


def feature_deviation(features: dict[str, float], baseline: dict[str, float], name: str,
                      use_spread: bool = True) -> float:
    """(feature - baseline) over its scale (the baseline's `<name>_spread` if given and
    `use_spread`, floored at MIN_SPREAD * SCALES[name]; else SCALES[name]); NaN if either is missing."""
    f, b = features.get(name), baseline.get(name)
    if f is None or b is None or not (math.isfinite(f) and math.isfinite(b)):
        return math.nan
    scale = SCALES[name]
    spread = baseline.get(f"{name}_spread") if use_spread else None
    if spread is not None and math.isfinite(spread):
        scale = max(spread, MIN_SPREAD * scale)
    return (f - b) / scale


def agitation_score(features: dict[str, float], baseline: dict[str, float],
                    weights: dict[str, float] | None = None) -> float:
    """How raised this voice is against the speaker's baseline: the WEIGHTS-weighted mean of
    `feature_deviation` over the weighted features both dicts have (missing ones drop out and
    the rest are re-weighted). About 0 at the baseline, 1.0 ~ one scale unit (10 dB louder and
    as much brighter) above it. NaN when no weighted feature can be compared.

    Baseline spreads (`<name>_spread`) are used when present; pass a baseline without them (or
    `{k: v for k, v in b.items() if not k.endswith("_spread")}`) for the fixed SCALES.
    """
    weights = WEIGHTS if weights is None else weights
    total = used = 0.0
    for name, w in weights.items():
        if w == 0:
            continue
        dev = feature_deviation(features, baseline, name)
        if math.isfinite(dev):
            total += w * dev
            used += abs(w)
    return total / used if used else math.nan


class AgitationMeter:
    """The live agitation of one speaker: features against a baseline frozen after their first
    `baseline_s` of speech, reported over their latest `window_s` of speech (None until then)."""

    def __init__(self, baseline_s: float = 20.0, window_s: float = 3.0, rate: int = RATE, every: int = 5) -> None:
        self.voice = VoiceFeatures(rate, pitch=False)
        self.every = every  # re-score every this many speech blocks: the window moves slowly
        self._blocks = 0
        self.baseline_s = baseline_s
        self.window_s = window_s
        self.baseline: dict[str, float] | None = None
        self.value: float | None = None

    def push(self, block: np.ndarray, speech: bool | None = None) -> float | None:
        """Feed one block; the current agitation score (updated on speech blocks)."""
        if not self.voice.push(block, speech):
            return self.value
        if self.baseline is None and self.voice.speech_s >= self.baseline_s:
            self.baseline = self.voice.features()
        self._blocks += 1
        if self.baseline is not None and self._blocks % self.every == 0:
            score = agitation_score(self.voice.features(last_s=self.window_s), self.baseline)
            self.value = None if math.isnan(score) else round(float(score), 2)
        return self.value
