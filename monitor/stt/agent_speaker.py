"""Which of two diarized speakers is the agent: the one who opens the call like an agent does.

A contact-centre agent greets and names the company ("thank you for calling ...", "Northwave
billing, Sophie speaking", "how can I help?"); the phrases are data, in `models/lexicon.toml`
under `[greeting]`. Only each speaker's first two turns are transcribed (up to 6 s), with the model
the call is replayed with: the first speaker's first, since that is nearly always the agent, and
the second speaker's only when the first did not greet. Neither greeting: whoever opens the call
(most of the first 2 s of speech, `diarize.OPENING_S`).
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
# A greeting opens the agent's first turn; the second is heard too, for a greeting the split cut
# in two. Later turns never greeted on the scenario mixes, and each costs a Whisper pass (0.3 s of
# CPU): hearing up to 6 s of turns took 2-3.5 s on a call where nobody greets.
OPENING_TURNS = 2
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
            for clip in openings(diar, head, speaker):
                text = " ".join(w.text for w in transcriber.transcribe(clip))
                phrase = greeting_in(text)
                if phrase:
                    who = SPEAKERS[speaker]
                    return AgentChoice(speaker, f"the {who} speaker greets the caller (\"{phrase}\")", greeted=True)
    return AgentChoice(0, "no greeting heard: the speaker who opens the call is taken as the agent")


def openings(diar: Diarization, head: np.ndarray, speaker: int) -> list[np.ndarray]:
    """The speaker's first OPENING_TURNS turns (from the kept start of the audio), one clip per turn, up to LISTEN_S in all.

    Each turn is transcribed on its own: Whisper run over several turns pasted together loses the
    first of them (the greeting) more often than it hears it.
    """
    clips: list[np.ndarray] = []
    got = 0
    for start, end in _joined(diar.turns(speaker)):
        a, b = int(start * RATE), min(int(end * RATE), len(head))
        if a >= len(head) or got >= LISTEN_S * RATE or len(clips) == OPENING_TURNS:
            break
        clip = head[a : min(b, a + int(LISTEN_S * RATE) - got)]
        clips.append(clip)
        got += len(clip)
    return clips


def _joined(turns: list[tuple[float, float]], gap_s: float = 0.5) -> list[tuple[float, float]]:
    """Turns less than `gap_s` apart joined into one (a breath inside a sentence is no new turn)."""
    out: list[tuple[float, float]] = []
    for start, end in turns:
        if out and start - out[-1][1] < gap_s:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out
