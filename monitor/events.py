"""The event contract: everything that leaves the pipeline is one of these dataclasses.

The JSONL log, the floor hub and the archive all carry the same JSON form (`to_dict`), with a
`schema` version. `t` is call time (samples consumed / sample rate), so a replay gives the same
events at any speed; `wall` is seconds since the stream started by the wall clock, kept only
to measure latency. Fields a stage does not compute yet are `None` (JSON `null`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
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
    # How a mono recording was split into agent and customer (None: roles come from channels or
    # devices): {"method": "diarization", "agent": "first"|"second", "reason": ..., "voices": ...}.
    diarization: dict[str, Any] | None = None


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
    pause: bool = False  # a partial sent `vad.end_partial_ms` into a pause: the coach decides on it as on a final


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


@dataclass(frozen=True)
class Status(Event):
    """The state of the audio source or a link: `state` is ok, overflow, lost, retrying or resumed.

    `overflows` counts capture blocks dropped because the pipeline fell behind, since the call began.
    """

    type: ClassVar[str] = "status"
    state: str
    message: str = ""
    overflows: int = 0


@dataclass(frozen=True)
class SupervisorRequested(Event):
    """The agent asked for a supervisor (a key in the TUI); the floor sees it at once."""

    type: ClassVar[str] = "supervisor.requested"
    note: str = ""


@dataclass(frozen=True)
class Bookmark(Event):
    """The agent marked a moment for QA to look at."""

    type: ClassVar[str] = "bookmark"
    note: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        CallStarted, TranscriptPartial, TranscriptFinal, Metrics, Nudge, NudgeCleared, CallEnded,
        Status, SupervisorRequested, Bookmark,
    )
}

_FIELDS = {cls: frozenset(f.name for f in fields(cls)) for cls in EVENT_TYPES.values()}  # the hub parses thousands a second


def event_from_dict(data: dict[str, Any]) -> Event:
    """The event a `to_dict` object describes; ValueError (one line) when it does not fit schema 1."""
    if not isinstance(data, dict):
        raise ValueError("an event is a JSON object")
    if data.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"schema {data.get('schema')!r} is not {SCHEMA_VERSION}")
    cls = EVENT_TYPES.get(data.get("type"))  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"unknown event type {data.get('type')!r}")
    names = _FIELDS[cls]
    extra = set(data) - names - {"schema", "type"}
    if extra:
        raise ValueError(f"{cls.type} has no field(s) {', '.join(sorted(extra))}")
    kwargs = {k: v for k, v in data.items() if k in names}
    try:
        if not isinstance(kwargs.get("call_id"), str):
            raise ValueError("call_id must be a string")
        for key in ("t", "wall"):
            if not isinstance(kwargs.get(key), (int, float)) or isinstance(kwargs.get(key), bool):
                raise ValueError(f"{key} must be a number")
        if "words" in kwargs:
            kwargs["words"] = [Word(**w) for w in kwargs["words"]]
        if "roles" in kwargs and cls is Metrics:
            kwargs["roles"] = {r: RoleMetrics(**m) for r, m in kwargs["roles"].items()}
        return cls(**kwargs)
    except (TypeError, AttributeError) as exc:
        raise ValueError(f"{cls.type} is malformed ({exc})") from None
