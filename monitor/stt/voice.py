"""Speaker embeddings: a 256-number voice print per stretch of speech, for telling two voices apart.

The network is Resemblyzer's GE2E voice encoder (Apache-2.0; three LSTM layers over 40 mel bands,
trained on thousands of real speakers), converted once to ONNX by `scripts/export-voice-encoder`
and shipped in `models/voice/` (5.7 MB), so it runs on onnxruntime, which faster-whisper already
needs: no PyTorch, nothing fetched at run time. `models/voice/README.md` has its provenance.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..resources import project_file

HOP = 160  # 10 ms mel frames at 16 kHz, as the encoder was trained
N_FFT = 400  # 25 ms
PARTIAL = 160  # frames per embedding window (1.6 s), the encoder's training length
# The encoder was trained on speech levelled to -30 dBFS, and its mel inputs are not log-scaled, so
# level matters: each window is scaled to the mean mel power per frame of speech at -30 dBFS
# (measured on real speech: 0.370 for jfk.flac, 0.367 for the fixtures' short.flac).
MEL_POWER_AT_TARGET = 0.37


def sliding_frames(audio: np.ndarray, size: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """The whole `size`-sample frames of `audio`, one every `hop` samples, and the samples left over
    for the next block (a stream's frames come out the same however it is cut into blocks)."""
    n = (len(audio) - size) // hop + 1 if len(audio) >= size else 0
    return audio[np.arange(size)[None, :] + hop * np.arange(n)[:, None]], audio[n * hop :]


class MelStream:
    """40-band mel power frames of a 16 kHz signal, fed block by block (the encoder's input)."""

    def __init__(self) -> None:
        self._basis = _mel_basis()
        self._window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, as in training
        self._rest = np.zeros(N_FFT // 2, dtype=np.float32)  # centred frames: the first is padded
        self._frames: list[np.ndarray] = []

    def push(self, x: np.ndarray) -> None:
        """Feed the next samples (16 kHz float32)."""
        frames, self._rest = sliding_frames(np.concatenate([self._rest, x.astype(np.float32, copy=False)]), N_FFT, HOP)
        if len(frames):
            power = np.abs(np.fft.rfft(frames * self._window, axis=1)) ** 2
            self._frames.append((power @ self._basis.T).astype(np.float32))

    def frames(self) -> np.ndarray:
        """All mel frames so far, (n, 40); frame i is centred on sample i * HOP."""
        return np.concatenate(self._frames) if self._frames else np.zeros((0, 40), dtype=np.float32)


class VoiceEncoder:
    """The ONNX voice encoder: mel windows in, unit-length embeddings out."""

    def __init__(self, threads: int = 0) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.enable_cpu_mem_arena = False  # the arena keeps the LSTM's largest workspace for good
        self._session = ort.InferenceSession(
            str(project_file("models/voice/encoder.onnx")), opts, providers=["CPUExecutionProvider"]
        )

    def embed(self, windows: np.ndarray) -> np.ndarray:
        """Embeddings (n, 256) of mel windows (n, frames, 40), each window levelled first (see MEL_POWER_AT_TARGET)."""
        if len(windows) == 0:
            return np.zeros((0, 256), dtype=np.float32)
        gain = MEL_POWER_AT_TARGET / np.maximum(windows.sum(axis=2).mean(axis=1), 1e-12)
        return self._session.run(None, {"mel": (windows * gain[:, None, None]).astype(np.float32)})[0]


@lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
    return np.load(project_file("models/voice/mel_basis.npy"))


@lru_cache(maxsize=1)
def encoder(threads: int = 0) -> VoiceEncoder:
    """The process's one encoder (loading it takes about 50 ms), on `threads` CPU threads (0: one per core)."""
    return VoiceEncoder(threads)
