"""Which of two diarized speakers is the agent: the one who opens the call like an agent does.

A contact-centre agent greets and names the company ("thank you for calling ...", "Northwave
billing, Sophie speaking", "how can I help?"); the phrases are data, in `models/lexicon.toml`
under `[greeting]`. Only the start of each speaker's first turns is transcribed, with the model
the call is replayed with: the first speaker's first, since that is nearly always the agent, and
the second speaker's only when the first did not greet. Neither greeting: whoever spoke first.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..resources import project_file
from .diarize import Diarization
from .worker import Transcriber

RATE = 16000
LISTEN_S = 6.0  # of each speaker's first turns, enough for "thank you for calling X, this is Y, how can I help"
SPEAKERS = ("first", "second")


@dataclass(frozen=True)
class AgentChoice:
    """The diarized speaker who is the agent (0 first to speak, 1 the other), why, and whether a greeting was heard."""

    speaker: int
    reason: str
    greeted: bool = False


@lru_cache(maxsize=1)
def greeting_patterns() -> re.Pattern[str]:
    """The `[greeting]` patterns of the lexicon, compiled into one."""
    with project_file("models/lexicon.toml").open("rb") as fh:
        patterns = tomllib.load(fh)["greeting"]["patterns"]
    return re.compile("|".join(f"(?:{p})" for p in patterns))


def greeting_in(text: str) -> str | None:
    """The greeting phrase in `text`, or None."""
    found = greeting_patterns().search(" ".join(text.lower().replace("’", "'").split()))
    return found.group(0) if found else None


def choose_agent(diar: Diarization, head: np.ndarray, setting: str, transcriber: Transcriber | None) -> AgentChoice:
    """The agent by `setting` ("first", "second") or, for "auto", by who greets, else who spoke first.

    With no `transcriber` nothing is heard (the setting, else the first speaker).
    """
    if setting in SPEAKERS:
        speaker = SPEAKERS.index(setting)
        return AgentChoice(speaker, f"--agent-speaker {setting}: the {setting} speaker to talk is the agent")
    if transcriber is not None:
        for speaker in (0, 1):
            clip = opening(diar, head, speaker)
            if len(clip) == 0:
                continue
            text = " ".join(w.raw or f" {w.text}" for w in transcriber.transcribe(clip)).strip()
            phrase = greeting_in(text)
            if phrase:
                who = SPEAKERS[speaker]
                return AgentChoice(speaker, f"the {who} speaker greets the caller (\"{phrase}\")", greeted=True)
    return AgentChoice(0, "no greeting heard: the first speaker to talk is taken as the agent")


def opening(diar: Diarization, head: np.ndarray, speaker: int) -> np.ndarray:
    """Up to LISTEN_S of the speaker's first turns (from the kept start of the audio), short pauses between."""
    parts: list[np.ndarray] = []
    got = 0
    gap = np.zeros(int(0.2 * RATE), dtype=np.float32)
    for start, end in diar.turns(speaker):
        a, b = int(start * RATE), min(int(end * RATE), len(head))
        if a >= len(head) or got >= LISTEN_S * RATE:
            break
        piece = head[a : min(b, a + int(LISTEN_S * RATE) - got)]
        parts += [piece, gap]
        got += len(piece)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
