"""Fakes for what the stage tests need to control: named as fakes, used only where the real part
would make the test slow or nondeterministic (the real model is tested in test_transcription)."""

from __future__ import annotations

import threading

import numpy as np

from monitor.stt.model import RawWord


class FakeTranscriber:
    """Says "lenN" for N samples; can be held (a slow CPU), all calls or those of one length."""

    name = "fake"

    def __init__(self, parallel: int = 1) -> None:
        self.parallel = parallel
        self.started: list[int] = []  # audio lengths, as each call begins
        self.calls: list[int] = []  # as each call ends
        self.gate = threading.Event()
        self.gate.set()
        self.holds: dict[int, threading.Event] = {}  # audio length -> held until set

    def transcribe(self, audio: np.ndarray) -> list[RawWord]:
        self.started.append(len(audio))
        self.gate.wait(10)
        if len(audio) in self.holds:
            self.holds[len(audio)].wait(10)
        self.calls.append(len(audio))
        return [RawWord(f"len{len(audio)}", 0.0, len(audio) / 16000, 0.9)]
