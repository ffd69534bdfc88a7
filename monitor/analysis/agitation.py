"""Acoustic agitation: how raised a speaker's voice is, against their own usual voice.

draft
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ..audio.levels import LoudnessMeter

RATE = 16000
FRAME = 640  # 40 ms pitch frame
HOP = 320  # 20 ms
F0_MIN, F0_MAX = 60.0, 550.0
SPEC_N = 512


def _yin(frames: np.ndarray, rate: int, threshold: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """F0 (Hz, NaN where unvoiced) and aperiodicity of each row of `frames`, by YIN."""
    n, size = frames.shape
    max_lag = int(rate / F0_MIN)
    min_lag = int(rate / F0_MAX)
    w = size - max_lag
    x = frames - frames.mean(axis=1, keepdims=True)
    nfft = 1 << int(np.ceil(np.log2(size + w)))
    a = np.fft.rfft(x, nfft)
    b = np.fft.rfft(x[:, :w], nfft)
    corr = np.fft.irfft(a * np.conj(b), nfft)[:, : max_lag + 1]
    cs = np.concatenate([np.zeros((n, 1)), np.cumsum(x * x, axis=1)], axis=1)
    lags = np.arange(max_lag + 1)
    e0 = cs[:, w : w + 1]
    et = cs[:, lags + w] - cs[:, lags]
    d = np.maximum(e0 + et - 2.0 * corr, 0.0)
    d[:, 0] = 0.0
    cum = np.cumsum(d[:, 1:], axis=1)
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] * lags[1:] / np.maximum(cum, 1e-12)
    f0 = np.full(n, np.nan)
    ap = np.ones(n)
    for i in range(n):
        c = cmnd[i]
        below = np.nonzero(c[min_lag:max_lag] < threshold)[0]
        if len(below) == 0:
            ap[i] = float(c[min_lag:max_lag].min())
            continue
        t = int(below[0]) + min_lag
        while t + 1 < max_lag and c[t + 1] < c[t]:
            t += 1
        ap[i] = float(c[t])
        # parabolic interpolation
        if 1 <= t < max_lag:
            y0, y1, y2 = c[t - 1], c[t], c[t + 1]
            den = y0 - 2 * y1 + y2
            shift = 0.5 * (y0 - y2) / den if den > 0 else 0.0
        else:
            shift = 0.0
        f0[i] = rate / (t + shift)
    return f0, ap


class VoiceFeatures:
    """draft"""

    def __init__(self, rate: int = RATE, window_s: float | None = None, margin_db: float = 12.0,
                 min_lufs: float = -60.0, floor_s: float = 30.0) -> None:
        self.rate = rate
        self.meter = LoudnessMeter(rate, window_s=0.4)
        self.margin_db = margin_db
        self.min_lufs = min_lufs
        self.window_s = window_s
        self._buf = np.zeros(0)
        self._blocks: deque = deque()
        self._levels: deque = deque()
        self.floor_blocks = int(floor_s * 10)
        self._hann = np.hanning(SPEC_N)
        f = np.fft.rfftfreq(SPEC_N, 1 / rate)
        self._lo = (f >= 50) & (f < 1000)
        self._hi = (f >= 1000) & (f < 5000)
        self._band = (f >= 50) & (f < 8000)
        self._f = f
        self.seconds = 0.0
        self.yin_threshold = 0.15
        self.own_gate = None
        self.frame_gate = 20.0

    def push(self, block: np.ndarray, speech: bool | None = None) -> None:
        x = np.asarray(block, dtype=np.float64)
        lufs = self.meter.push(x)
        self.seconds += len(x) / self.rate
        audio = np.concatenate([self._buf, x])
        n = max(0, (len(audio) - FRAME) // HOP + 1)
        f0 = np.zeros(0)
        ap = np.zeros(0)
        if n:
            idx = np.arange(FRAME)[None, :] + HOP * np.arange(n)[:, None]
            frames = audio[idx]
            f0, ap = _yin(frames, self.rate, self.yin_threshold)
            fe = 10 * np.log10(np.maximum((frames * frames).mean(axis=1), 1e-12))
            f0[fe < lufs - self.frame_gate] = np.nan
            self._buf = audio[n * HOP :]
        else:
            self._buf = audio
        # spectrum of the block
        m = len(x) // SPEC_N
        if m:
            fr = x[: m * SPEC_N].reshape(m, SPEC_N) * self._hann
            p = (np.abs(np.fft.rfft(fr, axis=1)) ** 2).sum(axis=0)
        else:
            p = np.abs(np.fft.rfft(np.pad(x, (0, SPEC_N - len(x))) * self._hann)) ** 2
        lo = float(p[self._lo].sum())
        hi = float(p[self._hi].sum())
        tot = float(p[self._band].sum())
        cen = float((p[self._band] * self._f[self._band]).sum())
        own = 10 * np.log10(max(float(np.mean(x * x)), 1e-12))
        self._blocks.append((lufs, speech, f0[~np.isnan(f0)], lo, hi, tot, cen, own))
        self._levels.append(lufs)
        if len(self._levels) > self.floor_blocks:
            self._levels.popleft()
        if self.window_s is not None:
            while len(self._blocks) > round(self.window_s * 10):
                self._blocks.popleft()

    def floor(self) -> float:
        return float(np.percentile(self._levels, 5)) if self._levels else self.min_lufs

    def features(self) -> dict[str, float]:
        floor = self.floor()
        sel = []
        for b in self._blocks:
            gate = b[0] > max(self.min_lufs, floor + self.margin_db)
            if self.own_gate is not None:
                gate = gate and b[7] > b[0] - self.own_gate
            if b[1] is not None:
                gate = gate and b[1]
            if gate:
                sel.append(b)
        out: dict[str, float] = {"speech_s": len(sel) / 10.0}
        if not sel:
            return out
        lufs = np.array([b[0] for b in sel])
        out["loud_med"] = float(np.median(lufs))
        out["loud_p90"] = float(np.percentile(lufs, 90))
        out["loud_spread"] = float(np.percentile(lufs, 90) - np.percentile(lufs, 10))
        f0 = np.concatenate([b[2] for b in sel])
        if len(f0) >= 5:
            st = 12 * np.log2(f0 / 100.0)
            out["f0_med"] = float(np.median(st))
            out["f0_p90"] = float(np.percentile(st, 90))
            out["f0_p10"] = float(np.percentile(st, 10))
            out["f0_range"] = float(np.percentile(st, 90) - np.percentile(st, 10))
        out["voiced"] = len(f0) / (5 * len(sel))
        lo = np.array([b[3] for b in sel])
        hi = np.array([b[4] for b in sel])
        tot = np.array([b[5] for b in sel])
        cen = np.array([b[6] for b in sel])
        out["alpha"] = float(10 * np.log10(hi.sum() / max(lo.sum(), 1e-20)))
        out["alpha_med"] = float(np.median(10 * np.log10(np.maximum(hi, 1e-20) / np.maximum(lo, 1e-20))))
        out["centroid"] = float(cen.sum() / max(tot.sum(), 1e-20))
        out["centroid_med"] = float(np.median(cen / np.maximum(tot, 1e-20)))
        return out
