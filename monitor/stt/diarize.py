"""Who speaks when in a mono recording of a call: two speakers, offline, on the CPU.

Speaker embeddings find the voices; classic features place the turn changes. The embeddings come
from a neural voice encoder (monitor/stt/voice.py: Resemblyzer's GE2E LSTM, trained on thousands
of real speakers, shipped as a 5.7 MB ONNX file and run on onnxruntime, which faster-whisper
already brings). The diarization nets that ship inside pip packages (pyannote, SpeechBrain, NeMo)
pull in PyTorch (about 700 MB) and most fetch their weights at run time. Spectral statistics alone
(the first version) told two different voices apart well and two similar ones poorly; the
encoder does better on both (docs/EVALUATION.md has the figures). The steps:

1. Speech: the bundled Silero VAD (the same model the pipeline segments with), per 32 ms.
2. Voices: an embedding per 1.6 s window of speech (every 0.4 s inside each speech run; a run
   shorter than a window, from 0.5 s, gets one of its own), split in two by k-means; each frame
   takes the speaker most of its windows were given.
3. Re-segmentation: 19 MFCCs per 10 ms frame (25 ms window, mean-normalised over the call); a
   small diagonal GMM per speaker, trained on its frames; every speech frame goes to the speaker
   whose model explains it better, smoothed over 0.3 s so a turn is not cut at every vowel;
   repeated a few times. Speaker changes land on 10 ms frames, where the windows blur them.
4. Overlap: a frame belongs to one speaker: where both talk, the louder (likelier) one wins,
   so a short interjection over the other speaker is lost (said in the README).

The result is a label per 10 ms frame (-1 nobody, 0 the speaker who opens the call, 1 the other),
streamed in: memory grows with the features (about 24 kB per second of audio: the MFCCs and the
encoder's mel frames) and the first minute of audio kept for hearing who greets, not with the
whole recording.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.fft import dct, rfft
from scipy.ndimage import uniform_filter1d

from .vad import FRAME, StreamingVad
from .voice import PARTIAL, MelStream, encoder, sliding_frames

RATE = 16000
HOP = 160  # 10 ms: the label resolution
WIN = 400  # 25 ms analysis window
N_FFT = 512
N_MELS = 30
N_MFCC = 19  # c1..c19: c0 (loudness) left out, so a speaker is not told apart by how loud the line was
VOICE_HOP = 40  # 0.4 s between the starts of the encoder's 1.6 s windows
VOICE_MIN = 50  # a speech run of 0.5 s or more gets a window, however short
VOICE_BATCH = 64  # windows per encoder run: the LSTM's workspace grows with it (an hour's file: 536 MB peak, 850 at 256)
SMOOTH_S = 0.3  # the log-likelihood ratio is averaged over this long before a frame is assigned
GMM_COMPONENTS = 8
RESEG_ROUNDS = 3
OPENING_S = 2.0  # who opens the call: most of its first 2 s of speech
MIN_TURN_S = 0.3  # shorter runs join their neighbours
VAD_ON, VAD_OFF = 0.5, 0.35
MIN_GAP_S = 0.25  # a pause shorter than this stays inside the turn
MIN_SPEECH_S = 0.1
NOISE_PERCENTILE = 20  # of the non-speech frames' power: the hiss, not breaths or the other side's tails


@dataclass(frozen=True)
class Diarization:
    """Frame labels at 10 ms: -1 nobody, 0 the speaker who opens the call, 1 the other.

    It always finds two speakers: these features cannot tell one voice from two (a single voice
    splits by what is said as cleanly as two voices split by who says it; docs/EVALUATION.md), so
    whether a recording holds a call is decided by words (monitor/stt/agent_speaker.py).
    """

    labels: np.ndarray
    noise_rms: float = 0.0  # the line's hiss where nobody speaks (RMS, full scale 1)

    def turns(self, speaker: int) -> list[tuple[float, float]]:
        """The speaker's turns as (start, end) seconds, in order."""
        mask = np.concatenate([[False], self.labels == speaker, [False]])
        edges = np.flatnonzero(mask[1:] != mask[:-1])
        return [(a * HOP / RATE, b * HOP / RATE) for a, b in zip(edges[::2], edges[1::2], strict=True)]

    def speech_s(self, speaker: int) -> float:
        """Seconds the speaker talks."""
        return float(np.count_nonzero(self.labels == speaker)) * HOP / RATE


class FeatureStream:
    """MFCC frames and VAD probabilities of a mono signal, fed block by block."""

    def __init__(self, keep_s: float = 60.0, threads: int = 0) -> None:
        self._threads = threads  # the voice encoder's CPU threads (0: onnxruntime's default, one per core)
        self._vad = StreamingVad()
        self._keep = int(keep_s * RATE)
        self._head: list[np.ndarray] = []  # the first `keep_s` of audio, for hearing who greets
        self._rest = np.zeros(0, dtype=np.float32)
        self._mfcc: list[np.ndarray] = []
        self._probs: list[np.ndarray] = []
        self._power: list[np.ndarray] = []  # mean square per 10 ms frame, for the line's noise floor
        self._window = np.hamming(WIN).astype(np.float32)
        self._mel = _mel_filters()
        self._mels = MelStream()
        self.samples = 0

    def push(self, x: np.ndarray) -> None:
        """Feed the next samples (16 kHz float32)."""
        if self.samples < self._keep:
            self._head.append(x[: self._keep - self.samples].copy())
        self.samples += len(x)
        self._probs.append(self._vad.push(x))
        self._mels.push(x)
        frames, self._rest = sliding_frames(np.concatenate([self._rest, x.astype(np.float32, copy=False)]), WIN, HOP)
        if len(frames):
            self._power.append((frames.astype(np.float64) ** 2).mean(axis=1))
            frames = np.concatenate([frames[:, :1], frames[:, 1:] - 0.97 * frames[:, :-1]], axis=1) * self._window
            power = np.abs(rfft(frames, N_FFT, axis=1)) ** 2
            logmel = np.log(power @ self._mel.T + 1e-8)
            self._mfcc.append(dct(logmel, type=2, norm="ortho", axis=1)[:, 1 : N_MFCC + 1].astype(np.float32))

    @property
    def head(self) -> np.ndarray:
        """The start of the audio that was kept (up to `keep_s`)."""
        return np.concatenate(self._head) if self._head else np.zeros(0, dtype=np.float32)

    def result(self) -> Diarization:
        """Cluster what was fed into two speakers."""
        n = self.samples // HOP
        mfcc = np.concatenate(self._mfcc) if self._mfcc else np.zeros((0, N_MFCC), dtype=np.float32)
        mfcc = np.concatenate([mfcc, np.zeros((max(0, n - len(mfcc)), N_MFCC), dtype=np.float32)])[:n]
        probs = np.concatenate(self._probs) if self._probs else np.zeros(0, dtype=np.float32)
        speech = _speech_frames(probs, n)
        power = np.concatenate(self._power)[:n] if self._power else np.zeros(0)
        quiet = power[~speech[: len(power)]]
        noise_rms = float(np.sqrt(np.percentile(quiet, NOISE_PERCENTILE))) if len(quiet) else 0.0
        return Diarization(_cluster(mfcc, speech, self._mels.frames(), self._threads), noise_rms)


def diarize(blocks: Iterable[np.ndarray]) -> Diarization:
    """Diarize a mono signal given as consecutive 16 kHz blocks."""
    stream = FeatureStream()
    for x in blocks:
        stream.push(x)
    return stream.result()


def _mel_filters() -> np.ndarray:
    def mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    points = hz(np.linspace(mel(np.array(60.0)), mel(np.array(7600.0)), N_MELS + 2))
    bins = np.fft.rfftfreq(N_FFT, 1.0 / RATE)
    filters = np.zeros((N_MELS, len(bins)), dtype=np.float32)
    for i in range(N_MELS):
        lo, mid, hi = points[i : i + 3]
        filters[i] = np.clip(np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)), 0.0, None)
    return filters


def _speech_frames(probs: np.ndarray, n: int) -> np.ndarray:
    """VAD probabilities (32 ms) to a speech mask on 10 ms frames, with hysteresis, gaps closed, blips dropped."""
    on = np.zeros(len(probs), dtype=bool)
    speaking = False
    for i, p in enumerate(probs):
        speaking = p >= VAD_ON if not speaking else p >= VAD_OFF
        on[i] = speaking
    centres = (np.arange(n) * HOP + WIN // 2) // FRAME
    mask = on[np.minimum(centres, len(on) - 1)] if len(on) else np.zeros(n, dtype=bool)
    mask = _fill_runs(mask, False, int(MIN_GAP_S * RATE / HOP))
    return _fill_runs(mask, True, int(MIN_SPEECH_S * RATE / HOP))


def _fill_runs(mask: np.ndarray, value: bool, shorter_than: int) -> np.ndarray:
    """Flip interior runs of `value` shorter than `shorter_than` frames."""
    out = mask.copy()
    padded = np.concatenate([[not value], mask == value, [not value]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if b - a < shorter_than and a > 0 and b < len(mask):
            out[a:b] = not value
    return out


def _cluster(mfcc: np.ndarray, speech: np.ndarray, mels: np.ndarray, threads: int) -> np.ndarray:
    """The speaker of every 10 ms frame: -1 nobody, 0 who opens the call, 1 the other."""
    labels = np.full(len(mfcc), -1, dtype=np.int8)
    idx = np.flatnonzero(speech)
    if len(idx) < 2 * PARTIAL:
        labels[idx] = 0
        return labels
    mfcc = mfcc - mfcc[idx].mean(axis=0)
    mfcc /= mfcc[idx].std(axis=0) + 1e-6
    frame_labels = _voice_labels(mels, speech, threads)
    x = mfcc[idx]
    assign = frame_labels[idx]
    for _ in range(RESEG_ROUNDS):
        models = [_Gmm.fit(x[assign == k]) for k in (0, 1)]
        if any(m is None for m in models):
            break
        smooth = _smooth_by_run(models[0].loglik(x) - models[1].loglik(x), speech, idx)
        assign = np.where(smooth >= 0, 0, 1).astype(np.int8)
    labels[idx] = assign
    labels = _merge_short(labels, int(MIN_TURN_S * RATE / HOP))
    # Speaker 0 opens the call: the one holding most of its first OPENING_S of speech, so a stray
    # first frame given to the other voice does not turn the agent into the customer.
    opening = labels[labels >= 0][: int(OPENING_S * RATE / HOP)]
    if np.count_nonzero(opening == 1) > np.count_nonzero(opening == 0):
        labels = np.where(labels >= 0, 1 - labels, labels).astype(np.int8)
    return labels


def _voice_labels(mels: np.ndarray, speech: np.ndarray, threads: int) -> np.ndarray:
    """Speaker 0/1 per speech frame (-1 where no window reached) from the voice encoder's windows."""
    n = len(speech)
    mels = np.concatenate([mels, np.zeros((max(0, n - len(mels)), mels.shape[1]), dtype=np.float32)])[:n]
    padded = np.concatenate([[0], speech.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    full, short = [], []
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if b - a >= PARTIAL:
            starts = list(range(a, b - PARTIAL + 1, VOICE_HOP))
            if starts[-1] != b - PARTIAL:
                starts.append(b - PARTIAL)  # the run's end is covered too
            full.extend((s, s + PARTIAL) for s in starts)
        elif b - a >= VOICE_MIN:
            short.append((a, b))
    out = np.where(speech, 0, -1).astype(np.int8)
    if len(full) + len(short) < 4:
        return out
    enc = encoder(threads)
    # In batches: an hour's recording has about 7,000 windows.
    batches = [enc.embed(np.stack([mels[a:b] for a, b in full[i : i + VOICE_BATCH]]))
               for i in range(0, len(full), VOICE_BATCH)]
    batches += [enc.embed(mels[a:b][None]) for a, b in short]  # unequal lengths: one at a time
    emb = np.concatenate(batches)
    votes = np.zeros((n, 2))
    for (a, b), k in zip(full + short, _kmeans2(emb), strict=True):
        votes[a:b, k] += 1
    out[speech] = np.where(votes[speech, 1] > votes[speech, 0], 1, 0)
    out[speech & (votes.sum(axis=1) == 0)] = -1
    return out


def _kmeans2(x: np.ndarray, starts: int = 8, rounds: int = 30) -> np.ndarray:
    """Two-cluster k-means, the best of several seeded starts (deterministic)."""
    rng = np.random.default_rng(0)
    best, best_cost = np.zeros(len(x), dtype=np.int8), np.inf
    for _ in range(starts):
        a = x[rng.integers(len(x))]
        d = ((x - a) ** 2).sum(axis=1)
        b = x[rng.choice(len(x), p=d / d.sum())] if d.sum() > 0 else x[rng.integers(len(x))]
        centres = np.stack([a, b])
        for _ in range(rounds):
            dist = ((x[:, None, :] - centres[None]) ** 2).sum(axis=2)
            lab = dist.argmin(axis=1)
            if np.all(lab == lab[0]):
                break
            new = np.stack([x[lab == k].mean(axis=0) for k in (0, 1)])
            if np.allclose(new, centres):
                break
            centres = new
        cost = float(((x - centres[lab]) ** 2).sum())
        if cost < best_cost and not np.all(lab == lab[0]):
            best, best_cost = lab.astype(np.int8), cost
    return best


def _smooth_by_run(llr: np.ndarray, speech: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Average the per-frame ratio over SMOOTH_S within each speech run (never across a pause)."""
    full = np.zeros(len(speech))
    full[idx] = llr
    out = np.zeros(len(speech))
    padded = np.concatenate([[0], speech.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    size = max(1, int(SMOOTH_S * RATE / HOP))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        out[a:b] = uniform_filter1d(full[a:b], size=min(size, b - a), mode="nearest")
    return out[idx]


def _merge_short(labels: np.ndarray, shorter_than: int) -> np.ndarray:
    """Give speaker runs shorter than `shorter_than` frames to the speaker around them, when both sides agree."""
    out = labels.copy()
    speech = np.flatnonzero(out >= 0)
    if len(speech) == 0:
        return out
    seq = out[speech]
    change = np.flatnonzero(np.diff(seq)) + 1
    bounds = np.concatenate([[0], change, [len(seq)]])
    for i in range(1, len(bounds) - 2):
        a, b = bounds[i], bounds[i + 1]
        if b - a < shorter_than and seq[a - 1] == seq[b]:
            seq[a:b] = seq[a - 1]
    out[speech] = seq
    return out


class _Gmm:
    """A diagonal-covariance Gaussian mixture, fitted by a few EM steps."""

    def __init__(self, weights: np.ndarray, means: np.ndarray, variances: np.ndarray) -> None:
        self.weights, self.means, self.variances = weights, means, variances

    @classmethod
    def fit(cls, x: np.ndarray, k: int = GMM_COMPONENTS, steps: int = 10) -> _Gmm | None:
        if len(x) < 4 * k:
            return None
        rng = np.random.default_rng(1)
        means = x[rng.choice(len(x), k, replace=False)]
        variances = np.tile(x.var(axis=0) + 1e-3, (k, 1))
        weights = np.full(k, 1.0 / k)
        floor = 1e-2 * x.var(axis=0) + 1e-4
        for _ in range(steps):
            resp = cls(weights, means, variances)._components(x)
            resp = np.exp(resp - resp.max(axis=1, keepdims=True))
            resp /= resp.sum(axis=1, keepdims=True)
            nk = resp.sum(axis=0) + 1e-9
            weights = nk / nk.sum()
            means = (resp.T @ x) / nk[:, None]
            variances = np.maximum((resp.T @ (x * x)) / nk[:, None] - means**2, floor)
        return cls(weights, means, variances)

    def _components(self, x: np.ndarray) -> np.ndarray:
        inv = 1.0 / self.variances
        quad = (x * x) @ inv.T - 2 * x @ (self.means * inv).T + (self.means**2 * inv).sum(axis=1)
        return np.log(self.weights) - 0.5 * (np.log(2 * np.pi * self.variances).sum(axis=1) + quad)

    def loglik(self, x: np.ndarray) -> np.ndarray:
        c = self._components(x)
        top = c.max(axis=1)
        return top + np.log(np.exp(c - top[:, None]).sum(axis=1))
