"""Streaming Silero VAD: the model bundled with faster-whisper, fed block by block.

faster-whisper runs Silero over a whole clip at once; its ONNX graph is an LSTM whose state
(`h`, `c`) and 64-sample context can be carried between calls, which gives exactly the
probabilities of the whole-clip run, whatever the block sizes (tests check this).

Each model call costs about as much for 3 frames as for 30, so a source that has audio ahead
(a file replayed `--fast`) can `prime` the VAD with a second of it in one call; `push` then
hands out those probabilities frame by frame, the same numbers a block-by-block run gives.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from faster_whisper.vad import get_vad_model

FRAME = 512  # samples per probability at 16 kHz (32 ms), fixed by the model
_CONTEXT = 64


class StreamingVad:
    """Speech probability per 32 ms frame of one role's audio."""

    def __init__(self) -> None:
        self._session = get_vad_model().session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)
        self._rest = np.zeros(0, dtype=np.float32)
        self._primed: deque[float] = deque()  # probabilities of audio run ahead, not yet pushed
        self._primed_samples = 0
        self._pushed = 0  # samples pushed so far
        self.frames_done = 0

    def prime(self, samples: np.ndarray) -> None:
        """Run the model ahead over audio that `push` will be given next, in the same order."""
        self._primed.extend(self._run(samples).tolist())
        self._primed_samples += len(samples)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Feed audio; return the probabilities of the frames it completed (possibly none)."""
        if not self._primed_samples:
            self._pushed += len(samples)
            return self._run(samples)
        if len(samples) > self._primed_samples:
            raise ValueError("pushed more audio than was primed")
        self._primed_samples -= len(samples)
        self._pushed += len(samples)
        ready = self._pushed // FRAME - (self.frames_done - len(self._primed))
        return np.array([self._primed.popleft() for _ in range(ready)], dtype=np.float32)

    def _run(self, samples: np.ndarray) -> np.ndarray:
        audio = np.concatenate([self._rest, samples.astype(np.float32, copy=False)])
        n = len(audio) // FRAME
        self._rest = audio[n * FRAME :]
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        frames = audio[: n * FRAME].reshape(n, FRAME)
        context = np.concatenate([self._context[None], frames[:-1, -_CONTEXT:]], axis=0)
        out, self._h, self._c = self._session.run(
            None, {"input": np.concatenate([context, frames], axis=1), "h": self._h, "c": self._c}
        )
        self._context = frames[-1, -_CONTEXT:].copy()
        self.frames_done += n
        return np.asarray(out, dtype=np.float32).reshape(-1)
