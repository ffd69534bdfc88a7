"""Acoustic agitation: how far a speaker's voice is raised above their own usual voice.

What: `VoiceFeatures` takes one role's audio in 100 ms blocks (16 kHz mono float32, as the
pipeline reads it), each with the block's momentary loudness and whether it is speech (both
measured by the caller: the role's one `LoudnessMeter` and its VAD, so nothing is measured
twice), and keeps a few measures of each block of speech; `features()` summarises the speech
heard so far (or its last few seconds) as a small dict; `agitation_score()` compares such a
dict with the same speaker's baseline dict and returns one number: about 0 for the speaker's
usual voice, positive when the voice is raised (1.0 is roughly "10 dB louder, with the
brighter, flatter spectrum that goes with it"). `AgitationMeter` runs this live for one role.

Why these measures: raising the voice in anger takes vocal effort, and effort shows as
(1) loudness, and (2) a flatter spectral tilt -- the voice source gets more high-frequency
energy, so the share of energy above 1 kHz and the spectral centroid go up. The spectral
measures survive what loudness does not: line gain, automatic gain control, headsets at
different distances. Pitch rises too, but on RAVDESS it adds nothing once loudness and tilt
are known (angry at normal intensity is often said low and hard), so it is not measured here;
the evaluation measures it (scripts/voice_eval.py) for comparison and future tuning.

Why per speaker: levels differ by 20 dB between lines and voices differ by an octave, so no
measure is judged on an absolute scale. The score is a weighted sum of differences from the
speaker's baseline (their median feature values, e.g. over their first seconds of speech),
each divided by a fixed, documented scale (SCALES); a baseline may carry its own spreads
(`<name>_spread`, e.g. MADs) to divide by instead.

Measures (per 100 ms block; only blocks the caller calls speech, at or above `min_lufs`, count):
- loudness: the block's momentary loudness (LUFS; in the pipeline the role's `LoudnessMeter`,
  K-weighted, `features.loudness_window_s` = 400 ms). `loudness` is its median over speech
  blocks, `loudness_p90` its 90th percentile.
- alpha: alpha ratio, dB of energy in 1-5 kHz over 50 Hz-1 kHz (Hann-windowed 32 ms frames
  averaged over the block), and brightness: the spectral centroid over 50 Hz-8 kHz in octaves
  re 1 kHz; both only from blocks whose own level is within 10 dB of the momentary loudness
  (the loud part of speech, not the decay of the 400 ms window into a pause). Medians.

Weights (WEIGHTS, SCALES) were chosen on RAVDESS (scripts/eval-agitation): each of loudness,
alpha and brightness counts equally after dividing by about its spread across a speaker's
neutral-to-angry clips, rounded (10 dB, 4 dB, 0.5 octave); a leave-one-actor-out logistic
regression on the same three measures gives about the same relative weights and AUC.

RAVDESS (scripts/eval-agitation; 48 angry vs 36 neutral/calm clips, 12 actors, each clip's
~2 s of speech scored against the actor's median over all 8 of their clips; speech blocks by
the evaluation's loudness gate, 10 dB above the clip's noise floor), AUC
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

Live use: learn the baseline as `features()` over a speaker's first seconds of speech
(`analysis.agitation_baseline_s`), then score `features(last_s=3)` against it every few blocks.

Pure numpy; no clocks, no I/O: the same audio gives the same numbers.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

RATE = 16000
SPEC_FRAME_S = 0.032

# score = sum(WEIGHTS[k] * (features[k] - baseline[k]) / SCALES[k]) / sum(WEIGHTS used)
WEIGHTS: dict[str, float] = {"loudness": 1.0, "alpha": 1.0, "brightness": 1.0}
SCALES: dict[str, float] = {
    "loudness": 10.0,  # dB
    "loudness_p90": 10.0,  # dB
    "alpha": 4.0,  # dB
    "brightness": 0.5,  # octaves
    "pitch": 5.0,  # semitones (measured by the evaluation only)
    "pitch_p90": 5.0,  # semitones
    "pitch_range": 3.0,  # semitones
    "voiced": 0.1,  # share of frames
}
FEATURES = tuple(SCALES)
MIN_SPREAD = 0.25  # a baseline's own spread is used only down to this share of SCALES


@dataclass(frozen=True)
class _Block:
    lufs: float
    loud: bool  # own level within 10 dB of the momentary loudness: spectral measures count
    alpha: float
    brightness: float


class VoiceFeatures:
    """Voice measures of one speaker's speech, fed 100 ms blocks of 16 kHz mono audio.

    Keeps the measures of the last `keep_s` seconds of speech (blocks without speech are not
    kept); `features()` summarises all of them, `features(last_s=4)` only the latest 4 s of speech.
    """

    def __init__(self, rate: int = RATE, *, keep_s: float = 120.0, min_lufs: float = -60.0) -> None:
        self.rate = rate
        self.min_lufs = min_lufs
        self.keep_s = keep_s
        self.speech_s = 0.0  # all speech heard, including what is no longer kept
        self._blocks: deque[tuple[float, _Block]] = deque()  # (seconds of speech, measures)
        self._kept_s = 0.0
        self._spec_n = 1 << round(math.log2(SPEC_FRAME_S * rate))
        self._window = np.hanning(self._spec_n)
        f = np.fft.rfftfreq(self._spec_n, 1.0 / rate)
        self._low = (f >= 50.0) & (f < 1000.0)
        self._high = (f >= 1000.0) & (f < 5000.0)
        self._band = (f >= 50.0) & (f < 8000.0)
        self._freqs = f[self._band]

    def push(self, block: np.ndarray, lufs: float, speech: bool) -> bool:
        """Feed one block with its momentary loudness (LUFS) and the caller's speech verdict
        (e.g. the VAD's); True if it counted as speech (`speech` and at least `min_lufs`)."""
        x = np.asarray(block, dtype=np.float64).reshape(-1)
        if len(x) == 0 or not speech or lufs < self.min_lufs:
            return False
        dur = len(x) / self.rate
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
        self._blocks.append((dur, _Block(float(lufs), loud, alpha, bright)))
        self._kept_s += dur
        while self._kept_s - self._blocks[0][0] >= self.keep_s - 1e-9:
            self._kept_s -= self._blocks.popleft()[0]
        return True

    def features(self, last_s: float | None = None) -> dict[str, float]:
        """Measures over the kept speech (or its last `last_s` seconds); `speech_s` says how much.

        Keys absent when not measurable (no speech yet, no loud block for the spectral ones).
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
        self.voice = VoiceFeatures(rate)
        self.every = every  # re-score every this many speech blocks: the window moves slowly
        self._blocks = 0
        self.baseline_s = baseline_s
        self.window_s = window_s
        self.baseline: dict[str, float] | None = None
        self.value: float | None = None

    def push(self, block: np.ndarray, lufs: float, speech: bool) -> float | None:
        """Feed one block with its loudness and speech verdict; the current score (updated on speech blocks)."""
        if not self.voice.push(block, lufs, speech):
            return self.value
        if self.baseline is None and self.voice.speech_s >= self.baseline_s:
            self.baseline = self.voice.features()
        self._blocks += 1
        if self.baseline is not None and self._blocks % self.every == 0:
            score = agitation_score(self.voice.features(last_s=self.window_s), self.baseline)
            self.value = None if math.isnan(score) else round(float(score), 2)
        return self.value
