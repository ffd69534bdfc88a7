"""The event contract: everything that leaves the pipeline is one of these dataclasses.

The JSONL log, the floor hub and the archive all carry the same JSON form (`to_dict`), with a
`schema` version. `t` is call time (samples consumed / sample rate), so a replay gives the same
events at any speed; `wall` is seconds since the stream started by the wall clock, kept only
to measure latency. Fields a stage does not compute yet are `None` (JSON `null`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Event:
    """Fields common to every event."""

    type: ClassVar[str] = "event"
    call_id: str
    t: float
    wall: float

    def to_dict(self) -> dict[str, Any]:
        """The event's JSON object, `schema` and `type` first."""
        return {"schema": SCHEMA_VERSION, "type": self.type, **asdict(self)}

    def to_json(self) -> str:
        """One line of JSON, as written to a JSONL log."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(", ", ": "))


@dataclass(frozen=True)
class CallStarted(Event):
    """The stream is open: who, which channels, which model."""

    type: ClassVar[str] = "call.started"
    agent_id: str
    roles: dict[str, Any]
    sample_rate: int
    source: str
    model: str


@dataclass(frozen=True)
class Word:
    """One word with call-time bounds and the model's probability for it."""

    w: str
    start: float
    end: float
    p: float


@dataclass(frozen=True)
class TranscriptPartial(Event):
    """The text so far of an utterance that is still growing; superseded by later ones."""

    type: ClassVar[str] = "transcript.partial"
    role: str
    text: str
    start: float
    end: float
    words: list[Word] = field(default_factory=list)


@dataclass(frozen=True)
class TranscriptFinal(TranscriptPartial):
    """The settled text of a finished utterance."""

    type: ClassVar[str] = "transcript.final"


@dataclass(frozen=True)
class RoleMetrics:
    """One role's rolling measures; `None` where no stage computes it yet."""

    loudness_lufs: float | None = None
    loudness_above_baseline_db: float | None = None
    pace_wpm: float | None = None
    pace_sps: float | None = None
    hostility: float | None = None
    sentiment: float | None = None
    speaking: bool = False
    agitation: float | None = None


@dataclass(frozen=True)
class Metrics(Event):
    """Both roles' measures at one moment, several times a second."""

    type: ClassVar[str] = "metrics"
    roles: dict[str, RoleMetrics]
    overlap: bool
    silence_s: float
    heat: int | None = None
    interruptions: int | None = None
    talk_ratio: float | None = None


@dataclass(frozen=True)
class Nudge(Event):
    """A move the agent should make, with the evidence for it."""

    type: ClassVar[str] = "nudge"
    id: str
    kind: str
    severity: str
    message: str
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NudgeCleared(Event):
    """A nudge is over: resolved, dismissed or expired."""

    type: ClassVar[str] = "nudge.cleared"
    id: str
    how: str
    kind: str = ""
    followed: bool | None = None
    follow_s: float | None = None


@dataclass(frozen=True)
class CallEnded(Event):
    """The stream is over; a summary of the call."""

    type: ClassVar[str] = "call.ended"
    duration: float
    peak_heat: int | None
    nudges_raised: int
    nudges_followed: int
    talk_ratio: float | None
    error: str | None = None
