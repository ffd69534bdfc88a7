"""Fakes for what the stage tests need to control: named as fakes, used only where the real part
would make the test slow or nondeterministic (the real model is tested in test_transcription)."""

from __future__ import annotations

import threading

import numpy as np

from monitor.stt.model import RawWord


class FakeTranscriber:
    """Says "utterance N" for the Nth call; can be held to simulate a slow CPU."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def transcribe(self, audio: np.ndarray) -> list[RawWord]:
        self.gate.wait(10)
        self.calls.append(len(audio))
        return [RawWord(f"len{len(audio)}", 0.0, len(audio) / 16000, 0.9)]
