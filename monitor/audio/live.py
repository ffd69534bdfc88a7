"""Live capture: one stereo device (channel → role) or one device per role, as 16 kHz blocks.

The PortAudio callback only copies frames into a bounded queue: it never blocks and never
resamples, so a slow pipeline costs dropped blocks (counted, reported as `status` events), not
a stalled sound card. The reading side resamples each role to 16 kHz and cuts blocks, so the
pipeline sees exactly what a file source gives it.

A device that goes quiet for `lost_after_s` (unplugged, sound server restarted) is closed and
reopened with backoff. Meanwhile its role is filled with silence (and, with every device gone,
silence follows the wall clock), so call time keeps running, the other side keeps being
transcribed, and the transcript so far is never lost.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType

import av
import numpy as np

from ..config import ROLES, LiveConfig
from ..errors import BadInput
from .devices import InputDevice, find_input, portaudio
from .recording import WavRecorder
from .source import RATE, AudioBlock

log = logging.getLogger(__name__)

_RATES = (48000, 44100, 16000, 32000, 22050, 8000)
_START_GRACE_S = 4.0


@dataclass(frozen=True)
class RolePlan:
    """Where one role's voice comes from: a device (name substring, index or None = default) and its channel."""

    role: str
    device: str | None
    channel: int


class _Capture:
    """One open input device feeding one or more roles."""

    def __init__(self, device: InputDevice, roles: dict[str, int], block_ms: int, cfg: LiveConfig, sd: ModuleType) -> None:
        self.device = device
        self.roles = roles  # role -> channel on this device
        self.block_ms = block_ms
        self.cfg = cfg
        self.sd = sd
        self.queue: queue.Queue[np.ndarray] = queue.Queue(maxsize=max(2, int(cfg.queue_s * 1000 / block_ms)))
        self.overflows = 0
        self.alive = False
        self.last_data = 0.0
        self.failures = 0
        self.next_retry = 0.0
        self.rate = 0
        self.wakeup: threading.Event | None = None
        self.discard = True  # until the call starts: audio heard while the model loads is not part of it
        self._stream = None
        self._resamplers: dict[str, av.AudioResampler] = {}

    @property
    def label(self) -> str:
        return f"{self.device.name!r} ({', '.join(self.roles)})"

    def open(self) -> None:
        """Open and start the stream at a rate the device takes; PortAudio errors become BadInput."""
        channels = max(self.roles.values()) + 1
        if channels > self.device.channels:
            raise BadInput(
                f"input device {self.device.name!r} has {self.device.channels} channel(s) but channel {channels - 1} was asked "
                "for; choose another with --agent-channel/--customer-channel or use one device per role"
            )
        self.rate = self._pick_rate(channels)
        try:
            stream = self.sd.InputStream(
                device=self.device.index, channels=channels, samplerate=self.rate, dtype="float32",
                blocksize=self.rate * self.block_ms // 1000, callback=self._callback,
            )
            stream.start()
        except self.sd.PortAudioError as exc:
            raise BadInput(
                f"cannot open input device {self.device.name!r} ({exc}); it may be busy with another program "
                "or gone: close that program or choose another device (callmon devices lists them)"
            ) from None
        self._stream = stream
        self._resamplers = {
            role: av.AudioResampler(format="fltp", layout="mono", rate=RATE) for role in self.roles
        } if self.rate != RATE else {}
        self.alive = True
        self.restart_clock()

    def restart_clock(self) -> None:
        """From now, silence counts towards `lost` (after a grace: PulseAudio's ALSA plugin takes ~2 s to start)."""
        self.last_data = time.monotonic() + _START_GRACE_S

    def _pick_rate(self, channels: int) -> int:
        for rate in (int(self.device.default_rate), *_RATES):
            try:
                self.sd.check_input_settings(device=self.device.index, channels=channels, samplerate=rate, dtype="float32")
                return rate
            except Exception:  # PortAudioError or ValueError: this rate is not supported, try the next
                continue
        raise BadInput(f"input device {self.device.name!r} accepts none of the usual sample rates; choose another device")

    def _callback(self, indata: np.ndarray, frames: int, _time: object, status: object) -> None:
        # Runs on PortAudio's thread: copy (the buffer is reused) and go; never block.
        self.last_data = time.monotonic()
        if self.discard:
            return
        if getattr(status, "input_overflow", False):
            self.overflows += 1
        try:
            self.queue.put_nowait(indata.copy())
        except queue.Full:
            self.overflows += 1
        if self.wakeup is not None:
            self.wakeup.set()

    def drain(self) -> dict[str, np.ndarray]:
        """Everything captured since the last call, per role, at 16 kHz."""
        chunks = []
        while True:
            try:
                chunks.append(self.queue.get_nowait())
            except queue.Empty:
                break
        if not chunks:
            return {}
        data = np.concatenate(chunks)
        out = {}
        for role, ch in self.roles.items():
            x = np.ascontiguousarray(data[:, ch], dtype=np.float32)
            if self.rate != RATE:
                frame = av.AudioFrame.from_ndarray(x[None, :], format="fltp", layout="mono")
                frame.sample_rate = self.rate
                frames = self._resamplers[role].resample(frame)
                x = np.concatenate([f.to_ndarray()[0] for f in frames]) if frames else np.zeros(0, np.float32)
            out[role] = x.astype(np.float32, copy=False)
        return out

    def close(self, lost: bool = False) -> None:
        """Stop the stream; a lost one without waiting on a sound server that may be gone."""
        self.alive = False
        stream, self._stream = self._stream, None
        if stream is not None:
            if lost:
                # Closing a stream whose server died can block inside the ALSA plugin: do it aside.
                threading.Thread(target=_close_quietly, args=(stream,), daemon=True).start()
            else:
                _close_quietly(stream)
        while not self.queue.empty():
            self.queue.get_nowait()


def _close_quietly(stream: object) -> None:
    try:
        stream.abort()  # type: ignore[attr-defined]
        stream.close()  # type: ignore[attr-defined]
    except Exception:  # the device is gone already; nothing to do
        log.debug("closing a lost stream failed", exc_info=True)


class LiveSource:
    """Blocks of live audio per role, stamped in call time (samples captured)."""

    def __init__(self, plan: list[RolePlan], block_samples: int, cfg: LiveConfig, *, duration_s: float | None = None,
                 record: WavRecorder | None = None) -> None:
        self.sd = portaudio()
        self.record = record  # keeps every block it yields, for a replay that judges the call the same way
        self.cfg = cfg
        self.block_samples = block_samples
        self.limit = int(duration_s * RATE) if duration_s else None
        self.error: str | None = None
        self.roles = {p.role: p.channel for p in plan}
        self._plan = plan
        self._status: list[tuple[str, str]] = []
        self._reported_overflows = 0
        self._last_overflow_report = 0.0
        self._wakeup = threading.Event()
        self.captures: list[_Capture] = []
        devices: dict[int, tuple[InputDevice, dict[str, int]]] = {}
        for p in plan:
            device = find_input(p.device, self.sd)
            devices.setdefault(device.index, (device, {}))[1][p.role] = p.channel
        for device, roles in devices.values():
            cap = _Capture(device, roles, block_samples * 1000 // RATE, cfg, self.sd)
            cap.wakeup = self._wakeup
            self.captures.append(cap)
        try:
            for cap in self.captures:
                cap.open()
        except BadInput:
            self.close()
            raise

    @property
    def description(self) -> str:
        """What the call.started event says about the source."""
        return "live:" + ",".join(
            f"{role}={cap.device.name}#{ch}@{cap.rate}Hz" for cap in self.captures for role, ch in cap.roles.items()
        )

    @property
    def overflows(self) -> int:
        """Capture blocks dropped because the pipeline fell behind, since the call began."""
        return sum(c.overflows for c in self.captures)

    def pop_status(self) -> list[tuple[str, str]]:
        """Status changes since the last call: (state, message)."""
        out, self._status = self._status, []
        return out

    def close(self) -> None:
        """Close every device, and the recording."""
        for cap in self.captures:
            cap.close()
        if self.record is not None:
            self.record.close()

    def __iter__(self) -> Iterator[AudioBlock]:
        n = self.block_samples
        buffers = {role: np.zeros(0, np.float32) for role in self.roles}
        position = 0
        t0 = time.monotonic()
        for cap in self.captures:
            cap.restart_clock()  # opening the model took a while; the devices' clocks start now
            cap.discard = False
        try:
            while self.limit is None or position < self.limit:
                self._wakeup.wait(0.05)
                self._wakeup.clear()
                now = time.monotonic()
                for cap in self.captures:
                    if cap.alive:
                        for role, x in cap.drain().items():
                            buffers[role] = np.concatenate([buffers[role], x])
                        if now - cap.last_data > self.cfg.lost_after_s:
                            self._lost(cap, now)
                    elif now >= cap.next_retry:
                        self._retry(cap, now)
                self._report_overflows(now)
                self._align(buffers, position, t0, now)
                while all(len(b) >= n for b in buffers.values()):
                    length = n if self.limit is None else min(n, self.limit - position)
                    block = {}
                    for role in buffers:
                        block[role] = buffers[role][:n].copy()
                        if length < n:
                            block[role][length:] = 0.0
                        buffers[role] = buffers[role][n:]
                    if self.record is not None:
                        self.record.write([block[role][:length] for role in ROLES if role in block])
                    yield AudioBlock(position, length, block)
                    position += length
                    if self.limit is not None and position >= self.limit:
                        break
        finally:
            self.close()

    def _align(self, buffers: dict[str, np.ndarray], position: int, t0: float, now: float) -> None:
        """Fill lost roles with silence so call time runs on; trim drift between two live devices."""
        live = [role for cap in self.captures if cap.alive for role in cap.roles]
        if live:
            target = max(len(buffers[r]) for r in live)
        else:
            target = int((now - t0) * RATE) - position  # nothing captured: follow the wall clock
        for role, buf in buffers.items():
            if role not in live and len(buf) < target:
                buffers[role] = np.concatenate([buf, np.zeros(target - len(buf), np.float32)])
        # Two sound cards never share a clock exactly; drop the oldest audio of one that runs ahead by > 1 s.
        shortest = min(len(b) for b in buffers.values())
        for role, buf in buffers.items():
            if len(buf) - shortest > RATE:
                buffers[role] = buf[len(buf) - shortest - RATE // 2:]

    def _lost(self, cap: _Capture, now: float) -> None:
        cap.close(lost=True)
        cap.failures = 0
        cap.next_retry = now + 0.5
        self._status.append(("lost", f"input device {cap.label} stopped delivering audio; retrying"))
        log.warning("input device %s lost", cap.label)

    def _retry(self, cap: _Capture, now: float) -> None:
        try:
            if not any(c.alive for c in self.captures):
                # With every stream closed, PortAudio can be restarted to see devices that came back
                # under a new index (a headset plugged into another port).
                self.sd._terminate()
                self.sd._initialize()
                cap.device = find_input(cap.device.name, self.sd)
            cap.open()
        except BadInput as exc:
            cap.failures += 1
            delay = min(self.cfg.retry_max_s, 0.5 * 2 ** cap.failures)
            cap.next_retry = now + delay
            log.debug("reopening %s failed: %s", cap.label, exc)
            self._status.append(("retrying", f"input device {cap.label} still unavailable; next try in {delay:.1f} s"))
            return
        self._status.append(("resumed", f"input device {cap.label} is back; capture resumed"))
        log.warning("input device %s resumed", cap.label)

    def _report_overflows(self, now: float) -> None:
        total = self.overflows
        if total > self._reported_overflows and now - self._last_overflow_report >= 1.0:
            self._status.append(
                ("overflow", f"{total - self._reported_overflows} audio block(s) dropped: the machine is falling behind")
            )
            self._reported_overflows = total
            self._last_overflow_report = now
