"""Streaming loudness in LUFS: ITU-R BS.1770 K-weighting, EBU R128 momentary window.

pyloudnorm measures whole clips; a call needs the same measure on a running stream, so the
K-weighting filters (pyloudnorm's coefficients) keep their state between blocks and the
mean square is kept per block in a short ring for the sliding window.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from pyloudnorm.iirfilter import IIRfilter
from scipy.signal import lfilter, lfilter_zi


class LoudnessMeter:
    """Momentary loudness of one channel, updated block by block."""

    def __init__(self, rate: int, window_s: float = 0.4, floor_lufs: float = -70.0) -> None:
        # BS.1770-4 K-weighting: a high shelf (head effects) then a high pass (RLB).
        self._filters = []
        for gain, q, fc, kind in ((4.0, 1 / np.sqrt(2), 1500.0, "high_shelf"), (0.0, 0.5, 38.0, "high_pass")):
            f = IIRfilter(gain, q, fc, rate, kind)
            self._filters.append((f.b, f.a, lfilter_zi(f.b, f.a) * 0.0))
        self._blocks: deque[tuple[float, int]] = deque()
        self._window = max(1, round(window_s * rate))
        self._in_window = 0
        self.floor = floor_lufs

    def push(self, samples: np.ndarray) -> float:
        """Feed one block; return the loudness (LUFS) of the last window, floored at `floor`."""
        y = samples.astype(np.float64, copy=False)
        for i, (b, a, zi) in enumerate(self._filters):
            y, zi = lfilter(b, a, y, zi=zi)
            self._filters[i] = (b, a, zi)
        self._blocks.append((float(np.dot(y, y)), len(y)))
        self._in_window += len(y)
        while self._in_window - self._blocks[0][1] >= self._window:
            self._in_window -= self._blocks.popleft()[1]
        energy = sum(e for e, _ in self._blocks) / max(1, self._in_window)
        if energy <= 0.0:
            return self.floor
        return max(self.floor, -0.691 + 10.0 * float(np.log10(energy)))
