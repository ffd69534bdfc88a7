"""The call's recording for the HTML report: decoded, redacted spans bleeped, encoded small.

The transcript's redacted words keep their call times (monitor/redact.py folds a redacted span
into one word with the span's start and end), so the same spans are replaced in the audio by a
quiet 1 kHz tone on every channel, and the recording is embedded as a 32 kbit/s MP3 at 16 kHz
(about 240 kB a minute): the report stays one file and says nothing redaction took out.
Call time is the file's time (samples / rate from its first sample), so no offset is needed.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 16_000
BLEEP_HZ = 1000.0
BLEEP_LEVEL = 0.2
PAD_S = 0.1  # around each span: word times are approximate


@dataclass(frozen=True)
class ReportAudio:
    """The embedded recording: a data URI, and the spans bleeped in it (call seconds)."""

    data_uri: str
    bleeped: list[tuple[float, float]]


def redacted_spans(words_json: list[str]) -> list[tuple[float, float]]:
    """(start, end) of each redacted word ("[card]", "[email]"...) in the segments' word lists."""
    spans = []
    for text in words_json:
        for w in json.loads(text or "[]"):
            if "[" in w.get("w", "") and "]" in w.get("w", ""):
                spans.append((max(0.0, float(w["start"]) - PAD_S), float(w["end"]) + PAD_S))
    return sorted(spans)


def decode(path: str | Path) -> np.ndarray:
    """The file as float32 samples at 16 kHz, shape (channels, samples), one or two channels."""
    import av

    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams.audio[0]
        layout = "stereo" if stream.channels >= 2 else "mono"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=RATE)
        chunks = []
        for frame in container.decode(stream):
            chunks += [f.to_ndarray() for f in resampler.resample(frame)]
        chunks += [f.to_ndarray() for f in resampler.resample(None)]
    if not chunks:
        return np.zeros((1, 0), dtype=np.float32)
    return np.concatenate(chunks, axis=1).astype(np.float32)


def bleep(samples: np.ndarray, spans: list[tuple[float, float]]) -> np.ndarray:
    """A copy with each span replaced by the tone on every channel."""
    out = samples.copy()
    for start, end in spans:
        a, b = int(start * RATE), min(out.shape[1], int(end * RATE))
        if b > a:
            t = np.arange(b - a) / RATE
            out[:, a:b] = BLEEP_LEVEL * np.sin(2 * np.pi * BLEEP_HZ * t)
    return out


def encode_mp3(samples: np.ndarray) -> bytes:
    """MP3 bytes (32 kbit/s, 16 kHz) of float samples shaped (channels, n)."""
    import av

    buf = io.BytesIO()
    layout = "stereo" if samples.shape[0] == 2 else "mono"
    with av.open(buf, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=RATE, layout=layout)
        stream.bit_rate = 32_000
        step = 1152 * 8
        for i in range(0, samples.shape[1], step):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, i:i + step]), format="fltp", layout=layout)
            frame.sample_rate = RATE
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def report_audio(source: str | None, words_json: list[str]) -> ReportAudio | None:
    """The recording for the report, bleeped where the transcript was redacted; None when the file is not readable here."""
    if not source:
        return None
    path = Path(source.removeprefix("file:"))
    if not path.is_file():
        return None
    try:
        samples = decode(path)
    except Exception:  # noqa: BLE001 - an unreadable recording: the report goes on without the player
        return None
    spans = redacted_spans(words_json)
    data = encode_mp3(bleep(samples, spans))
    return ReportAudio("data:audio/mpeg;base64," + base64.b64encode(data).decode("ascii"), spans)
