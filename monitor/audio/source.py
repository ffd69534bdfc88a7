"""Audio sources: anything that yields fixed-size blocks of 16 kHz float32 audio per role.

A source is opened (and checked) before the call starts, then iterated. Every block carries
`start`, its first sample's index in call time, so everything downstream stamps events by
samples consumed, never by the wall clock. Blocks always have the same length (the last one
is zero-padded and says how many samples are real), which keeps segmentation identical at
any replay speed.
"""

from __future__ import annotations

import itertools
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from ..errors import BadInput

RATE = 16000
LOOKAHEAD_S = 30.0  # audio decoded at open to check the channels before the call starts
SAME_CHANNELS_DB = -40.0  # channels whose difference is this far below the signal carry the same audio


class AudioInputError(BadInput):
    """Audio that cannot be used; the message is one line telling the user what to do."""


@dataclass(frozen=True)
class AudioBlock:
    """One block of call audio: `start` sample, `length` real samples, one array per role."""

    start: int
    length: int
    roles: dict[str, np.ndarray]


class Pacer:
    """Sleeps so blocks come out no faster than `speed` × real time (None: as fast as possible).

    The agent's replay keys drive it from the UI thread while the source thread waits in it, so
    every method is thread-safe. Pausing or changing speed re-anchors the pacing clock at the
    audio heard so far: the call carries on from there, never skipping or repeating audio (the
    blocks are stamped by samples, so call time is exact at any speed).
    """

    def __init__(self, speed: float | None) -> None:
        self.speed = speed
        self._cond = threading.Condition()
        self._started = False
        self._paused = False
        self._t0 = 0.0  # when the audio up to `_anchor` was due
        self._anchor = 0.0  # samples
        self._requested = 0  # the furthest sample a wait has asked for

    @property
    def paused(self) -> bool:
        """Whether the audio is held."""
        return self._paused

    def wait(self, end_sample: int) -> None:
        """Block until the audio up to `end_sample` would have been heard at this speed (and not paused)."""
        with self._cond:
            self._requested = max(self._requested, end_sample)
            while True:
                if self._paused:
                    self._cond.wait()
                    continue
                if not self._started:
                    self._started = True
                    self._t0, self._anchor = time.monotonic(), 0.0
                if self.speed is None:
                    return
                due = self._t0 + (end_sample - self._anchor) / RATE / self.speed
                delay = due - time.monotonic()
                if delay <= 0:
                    return
                self._cond.wait(delay)  # woken early by pause, resume or a new speed

    def pause(self) -> None:
        """Hold the audio after the current block until `resume`."""
        with self._cond:
            if not self._paused:
                self._reanchor()
                self._paused = True
                self._cond.notify_all()

    def resume(self) -> None:
        """Carry on from where the audio was paused."""
        with self._cond:
            if self._paused:
                self._paused = False
                self._t0 = time.monotonic()
                self._cond.notify_all()

    def set_speed(self, speed: float | None) -> None:
        """Play on at `speed` × real time from the audio heard so far."""
        with self._cond:
            if not self._paused:
                self._reanchor()
                self._t0 = time.monotonic()
            self.speed = speed
            self._cond.notify_all()

    def _reanchor(self) -> None:
        """Move the anchor to the audio due by now, but never past what the source has asked for:
        a pipeline that fell behind carries on at the new pace instead of bursting to catch up."""
        if not self._started:
            return
        if self.speed is None:
            self._anchor = float(self._requested)
        else:
            due_now = self._anchor + (time.monotonic() - self._t0) * RATE * self.speed
            self._anchor = min(due_now, float(self._requested))


class FileSource:
    """A recorded call: any format FFmpeg reads, any rate and channel count, decoded in blocks.

    Memory stays flat on long files: frames are decoded, resampled to 16 kHz and cut into
    blocks as they arrive, never loaded whole.
    """

    def __init__(self, path: str | Path, block_samples: int, pacer: Pacer | None = None) -> None:
        self.path = Path(path)
        self.roles: dict[str, int] = {}
        self.block_samples = block_samples
        self.pacer = pacer or Pacer(None)
        self.channels = 0
        self.native_rate = 0
        self.error: str | None = None
        self.duration_s: float | None = None
        self.same_channels = False  # every channel carries the same signal (mono saved as stereo)
        self._header_s: float | None = None  # what a WAV header promises, exactly
        self._damage = ""
        self._container: av.container.InputContainer | None = None
        self._open()

    @property
    def description(self) -> str:
        """What the call.started event says about the source."""
        return f"file:{self.path}"

    @property
    def read_ahead(self) -> int:
        """How many blocks the pipeline may take at once: a second's worth when nothing paces the replay."""
        return 1000 // max(1, self.block_samples // 16) if self.pacer.speed is None else 1

    def _open(self) -> None:
        path = self.path
        if not path.exists():
            raise AudioInputError(f"no such file: {path}")
        if path.is_dir():
            raise AudioInputError(f"{path} is a directory; give an audio file (wav, flac, ogg, mp3)")
        if path.stat().st_size == 0:
            raise AudioInputError(f"{path} is empty (0 bytes); give a recorded call")
        try:
            self._container = av.open(str(path), metadata_errors="ignore")
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise AudioInputError(f"{path} is not a readable audio file ({_reason(exc)}); give wav, flac, ogg or mp3") from None
        streams = self._container.streams.audio
        if not streams:
            self._container.close()
            raise AudioInputError(f"{path} has no audio stream; give a recorded call")
        stream = streams[0]
        self.channels = stream.codec_context.channels
        self.native_rate = stream.codec_context.sample_rate
        if stream.duration is not None and stream.time_base is not None:
            self.duration_s = float(stream.duration * stream.time_base)
        elif self._container.duration:
            self.duration_s = self._container.duration / 1_000_000
        if self.channels == 0 or self.native_rate == 0:
            self._container.close()
            raise AudioInputError(f"{path} has an audio stream with no channels or no sample rate; the file is corrupt")
        self._header_s = _wav_header_seconds(path)
        if self._header_s is not None:
            self.duration_s = self._header_s  # FFmpeg takes a WAV's length from the file size, not its header
        # Decode the start now: a file with a header and no audio, or damaged from the start, is
        # bad input before the call begins, not a call that starts and breaks. The first seconds
        # also tell whether the channels carry the same signal, which decides the roles.
        self._chunks = self._decode()
        self._ahead: list[np.ndarray] = []
        got = 0
        for chunk in self._chunks:
            self._ahead.append(chunk)
            got += chunk.shape[1]
            if got >= LOOKAHEAD_S * RATE:
                break
        if not self._ahead:
            self._container.close()
            if self.error:
                raise AudioInputError(f"{path} cannot be decoded ({self._damage}); the file is corrupt")
            raise AudioInputError(f"{path} contains no audio samples (zero length); give a recorded call")
        self.same_channels = self.channels > 1 and _same_signal(np.concatenate(self._ahead, axis=1))

    def use_roles(self, roles: dict[str, int]) -> None:
        """Map roles to channels; a channel the file lacks is bad input."""
        for role, channel in roles.items():
            if channel >= self.channels:
                assert self._container is not None
                self._container.close()
                raise AudioInputError(
                    f"{self.path} has {self.channels} channel(s) (0..{self.channels - 1}) but the {role} is set to "
                    f"channel {channel}; choose another with --{role}-channel"
                )
        self.roles = dict(roles)

    def __iter__(self) -> Iterator[AudioBlock]:
        """Decode, resample and yield blocks; a decode error mid-file ends the stream and sets `error`."""
        assert self._container is not None
        n = self.block_samples
        pending = np.zeros((self.channels, 0), dtype=np.float32)
        position = 0
        try:
            ahead, self._ahead = self._ahead, []
            for chunk in itertools.chain(ahead, self._chunks):
                pending = np.concatenate([pending, chunk], axis=1) if pending.shape[1] else chunk
                while pending.shape[1] >= n:
                    yield self._block(position, pending[:, :n], n)
                    position += n
                    pending = pending[:, n:]
            if pending.shape[1]:
                real = pending.shape[1]
                pad = np.zeros((self.channels, n), dtype=np.float32)
                pad[:, :real] = pending
                yield self._block(position, pad, real)
                position += real
        finally:
            self._container.close()
        heard = position / RATE
        # A WAV header states its length exactly; other formats' lengths are estimates.
        slack = 0.05 if self._header_s is not None else max(1.0, 0.05 * (self.duration_s or 0))
        if self.error is None and self.duration_s and self.duration_s - heard > slack:
            self.error = (
                f"{self.path} ends at {heard:.1f} s but its header says {self.duration_s:.1f} s: the file is cut short"
            )

    def _block(self, start: int, data: np.ndarray, real: int) -> AudioBlock:
        self.pacer.wait(start + real)
        return AudioBlock(start, real, {role: data[ch].copy() for role, ch in self.roles.items()})

    def _decode(self) -> Iterator[np.ndarray]:
        assert self._container is not None
        stream = self._container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", rate=RATE)
        try:
            for frame in self._container.decode(stream):
                frame.pts = None  # the resampler keeps its own clock; broken timestamps must not stall it
                for out in resampler.resample(frame):
                    yield _planar(out, self.channels)
            for out in resampler.resample(None):
                yield _planar(out, self.channels)
        except (av.error.FFmpegError, ValueError) as exc:
            # Keep everything decoded so far: the call up to the damage is still transcribed.
            self._damage = _reason(exc)
            self.error = f"{self.path} is damaged after the audio already read ({self._damage})"


class SplitSource:
    """A mono recording split into agent and customer by a speaker timeline.

    Each role hears the mix, silenced where the other speaker talks, so every stage after the
    source works as on a stereo call. `labels` gives the speaker of each `hop` samples (-1
    nobody, 0 the first to speak, 1 the other); the gains ramp over one hop at a change, so no
    click is cut into the audio. Where nobody speaks both roles hear the line's background.
    What fills the silenced stretches is hiss at `noise_rms` (the line's own level, measured by
    the diarization where nobody speaks), as a stereo channel has there: on digital silence
    tiny.en heard the next turn differently now and then (docs/EVALUATION.md).
    """

    PAD_S = 0.05  # the other speaker's turns widened by this much: their first and last sounds stay out

    def __init__(self, source: FileSource, labels: np.ndarray, hop: int, agent: int, diarization: dict,
                 noise_rms: float = 0.0) -> None:
        self.source = source
        self._noise_rms = noise_rms
        self._noise = {role: np.random.default_rng(seed) for seed, role in enumerate(("agent", "customer"))}
        source.use_roles({"mix": 0})
        self.roles = {"agent": 0, "customer": 0}
        self.diarization = diarization  # what call.started says about the split
        self._hop = hop
        pad = max(1, int(self.PAD_S * RATE / hop))
        self._gain = {
            role: _gain(labels, own=speaker, other=1 - speaker, pad=pad)
            for role, speaker in (("agent", agent), ("customer", 1 - agent))
        }

    @property
    def description(self) -> str:
        """What the call.started event says about the source."""
        return self.source.description

    @property
    def error(self) -> str | None:
        """Why the recording ended early, if it did."""
        return self.source.error

    @property
    def duration_s(self) -> float | None:
        """The recording's length, as far as its header says."""
        return self.source.duration_s

    @property
    def read_ahead(self) -> int:
        """As the file's: how many blocks the pipeline may take at once."""
        return self.source.read_ahead

    def __iter__(self) -> Iterator[AudioBlock]:
        """The file's blocks, each role's audio the mix times its gain."""
        for block in self.source:
            x = block.roles["mix"]
            t = (block.start + np.arange(len(x))) / self._hop - 0.5  # position in frames, frame centres at .5
            yield AudioBlock(block.start, block.length, {role: self._role(role, x, t) for role in self._gain})

    def _role(self, role: str, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        g = self._gain[role]
        # Only the frames this block spans: np.interp reads its whole `xp`, and over the whole
        # call's gains that cost 2.5 ms a block, about 3 minutes for an hour's file.
        lo = min(max(0, int(np.floor(t[0]))), len(g) - 1)
        hi = min(len(g), max(lo + 1, int(np.ceil(t[-1])) + 2))
        gain = np.interp(t, np.arange(lo, hi), g[lo:hi])
        hiss = self._noise[role].standard_normal(len(x)) * self._noise_rms
        return (x * gain + hiss * (1.0 - gain)).astype(np.float32)


def _gain(labels: np.ndarray, own: int, other: int, pad: int) -> np.ndarray:
    """1 except where `other` talks (widened by `pad` frames) and `own` does not."""
    theirs = (labels == other).astype(np.float32)
    if pad:
        theirs = np.convolve(theirs, np.ones(2 * pad + 1, dtype=np.float32), mode="same") > 0
    return np.where(theirs & (labels != own), 0.0, 1.0).astype(np.float32)


def roles_for(channels: int, agent_channel: int, customer_channel: int, mono_role: str) -> dict[str, int]:
    """Channel of each role: a mono source is one role, anything wider maps agent and customer."""
    if channels == 1:
        return {mono_role: 0}
    if agent_channel == customer_channel:
        raise AudioInputError(f"the agent and the customer are both set to channel {agent_channel}; give them different channels")
    return {"agent": agent_channel, "customer": customer_channel}


def _same_signal(audio: np.ndarray) -> bool:
    """Whether every channel carries the first one's signal (to within a lossy codec's error)."""
    power = float(np.mean(audio[0] ** 2))
    if power <= 1e-10:  # silence so far: nothing to compare, so the channels stay apart
        return False
    diff = max(float(np.mean((ch - audio[0]) ** 2)) for ch in audio[1:])
    return diff <= power * 10 ** (SAME_CHANNELS_DB / 10)


def _wav_header_seconds(path: Path) -> float | None:
    """The length a RIFF/WAVE header promises for its `data` chunk, or None (not a WAV, or no length given).

    FFmpeg derives a WAV's duration from the file size, so a file cut short looks complete to it;
    the header's own byte count is what the recorder meant to write.
    """
    try:
        with path.open("rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            rate = align = 0
            while True:
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                kind, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if kind == b"fmt ":
                    fmt = fh.read(size)
                    if len(fmt) < 14:
                        return None
                    rate, align = struct.unpack("<I", fmt[4:8])[0], struct.unpack("<H", fmt[12:14])[0]
                    fh.seek(size & 1, 1)
                elif kind == b"data":
                    # 0 and 0xFFFFFFFF are what streaming writers leave when they cannot go back.
                    if not rate or not align or size in (0, 0xFFFFFFFF):
                        return None
                    return size / align / rate
                else:
                    fh.seek(size + (size & 1), 1)
    except OSError:
        return None


def _planar(frame: av.AudioFrame, channels: int) -> np.ndarray:
    data = frame.to_ndarray().astype(np.float32, copy=False)
    return data.reshape(channels, -1)


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.strip().rstrip(".").split(":")[-1].strip() or type(exc).__name__
