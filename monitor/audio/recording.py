"""A recording of what the monitor heard: the call audio exactly as the pipeline read it.

`callmon live --record FILE.wav` keeps the 16 kHz blocks the live source hands the pipeline
(after resampling, with any silence filled in for a lost device), agent on channel 0 and
customer on channel 1, as 32-bit float WAV: no rounding, so `callmon replay FILE.wav` at any
speed hears the same samples and gives the live call's nudges and outcomes.

The header's sizes are brought up to date after every block, so the file is a valid WAV
however the call ends (Ctrl-C, a crash, a power cut between two blocks).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..errors import BadInput

_FLOAT = 3  # WAVE_FORMAT_IEEE_FLOAT
_HEADER = 44


class WavRecorder:
    """Appends multichannel float32 blocks to a WAV file."""

    def __init__(self, path: str | Path, channels: int, rate: int) -> None:
        self.path = Path(path)
        self.channels = channels
        self.rate = rate
        self.frames = 0
        try:
            self._fh = self.path.open("wb")
        except OSError as exc:
            raise BadInput(f"cannot write the recording {self.path}: {exc.strerror or exc}") from None
        self._write_header()

    def write(self, columns: list[np.ndarray]) -> None:
        """One block: one array per channel, all the same length."""
        frames = np.stack([np.asarray(c, dtype="<f4") for c in columns], axis=1)
        self._fh.write(frames.tobytes())
        self.frames += len(frames)
        self._write_header()
        self._fh.seek(0, 2)

    def close(self) -> None:
        """Flush and close (the header is already right)."""
        if not self._fh.closed:
            self._fh.close()

    def _write_header(self) -> None:
        data = self.frames * self.channels * 4
        self._fh.seek(0)
        self._fh.write(b"RIFF" + struct.pack("<I", _HEADER - 8 + data) + b"WAVE")
        self._fh.write(b"fmt " + struct.pack("<IHHIIHH", 16, _FLOAT, self.channels, self.rate,
                                             self.rate * self.channels * 4, self.channels * 4, 32))
        self._fh.write(b"data" + struct.pack("<I", data))
