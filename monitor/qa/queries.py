"""Reading the archive: the calls a filter selects, one call in full, and transcript search.

Only calls QA can trust are listed: complete ones, and live calls cut off part-way (kept as far as
they were written). An ingest still running or killed part-way (a `partial` call with a content
hash) is left out: the next run of the same ingest replaces it.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ..errors import BadInput
from .archive import POINT_COLUMNS
from .scorecard import NudgeRecord, Scorecard, build_scorecard
from .timeline import MetricPoint

MARK_KINDS = {"supervisor_requested": "supervisor.requested", "bookmark": "bookmark"}  # --kind names of marks
VISIBLE = "(c.status = 'complete' OR c.content_hash IS NULL)"
# A live call cut off has no call.ended summary: its timeline says how far it got and how hot.
DURATION = "COALESCE(c.duration, (SELECT max(m.t) FROM metrics m WHERE m.call_id = c.call_id))"
PEAK_HEAT = "COALESCE(c.peak_heat, (SELECT max(m.heat) FROM metrics m WHERE m.call_id = c.call_id))"
_SUMMARY = {
    "duration": DURATION,
    "peak_heat": PEAK_HEAT,
    "nudges_raised": "COALESCE(c.nudges_raised, (SELECT count(*) FROM nudges n WHERE n.call_id = c.call_id))",
    "nudges_followed": "COALESCE(c.nudges_followed, (SELECT count(*) FROM nudges n WHERE n.call_id = c.call_id AND n.followed))",
}


@dataclass(frozen=True)
class Filters:
    """Which calls: dates are inclusive days in UTC (YYYY-MM-DD)."""

    since: date | None = None
    until: date | None = None
    agent: str | None = None
    min_heat: int | None = None
    kind: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        """SQL conditions on `calls c` and their parameters."""
        parts, params = [VISIBLE], []
        if self.since:
            parts.append("c.call_date >= ?")
            params.append(self.since.isoformat())
        if self.until:
            parts.append("c.call_date < ?")
            params.append((self.until + timedelta(days=1)).isoformat())
        if self.agent:
            parts.append("c.agent_id = ?")
            params.append(self.agent)
        if self.min_heat is not None:
            parts.append(f"{PEAK_HEAT} >= ?")
            params.append(self.min_heat)
        if self.kind in MARK_KINDS:
            parts.append("EXISTS (SELECT 1 FROM marks k WHERE k.call_id = c.call_id AND k.kind = ?)")
            params.append(MARK_KINDS[self.kind])
        elif self.kind:
            parts.append("EXISTS (SELECT 1 FROM nudges n WHERE n.call_id = c.call_id AND n.kind = ?)")
            params.append(self.kind)
        return " AND ".join(parts), params


@dataclass(frozen=True)
class CallInfo:
    """A call's row in the archive."""

    call_id: str
    status: str
    source: str | None
    agent_id: str | None
    call_date: str
    model: str | None
    duration: float | None
    peak_heat: int | None
    nudges_raised: int | None
    nudges_followed: int | None
    talk_ratio: float | None
    error: str | None

    @property
    def complete(self) -> bool:
        """Whether the call reached its end (a live call cut off is not)."""
        return self.status == "complete"


@dataclass(frozen=True)
class Segment:
    """One transcribed utterance (redacted)."""

    role: str
    start: float
    end: float
    text: str
    words: str = "[]"  # JSON [{"w", "start", "end", "p"}], redacted spans folded into one word each


@dataclass(frozen=True)
class Mark:
    """A bookmark or a supervisor request."""

    t: float
    kind: str
    note: str


@dataclass(frozen=True)
class NudgeRow:
    """A nudge with its words, for the timeline and the report."""

    record: NudgeRecord
    message: str
    reason: str
    evidence: dict[str, Any]


@dataclass
class CallDetail:
    """Everything archived about one call, and its scorecard."""

    info: CallInfo
    points: list[MetricPoint]
    nudges: list[NudgeRow]
    segments: list[Segment]
    marks: list[Mark]
    scorecard: Scorecard = field(init=False)

    def __post_init__(self) -> None:
        duration = self.info.duration
        if duration is None:  # cut off: as far as the timeline goes
            duration = self.points[-1].t if self.points else 0.0
        self.scorecard = build_scorecard(
            self.points, [n.record for n in self.nudges], duration_s=duration,
            talk_ratio=self.info.talk_ratio, peak_heat=self.info.peak_heat,
            agent_lines=[(s.start, s.text) for s in self.segments if s.role == "agent"],
            ended=self.info.duration is not None,
        )


_INFO_COLUMNS = (
    "call_id, status, source, agent_id, call_date, model, duration, peak_heat, nudges_raised, nudges_followed, "
    "talk_ratio, error"
)


def list_calls(conn: sqlite3.Connection, filters: Filters, *, order: str = "heat", limit: int | None = None) -> list[CallInfo]:
    """The calls the filters select: hottest first (`heat`) or newest first (`date`)."""
    where, params = filters.where()
    by = "peak_heat DESC, nudges_raised DESC, call_date DESC" if order == "heat" else "call_date DESC"
    columns = [f"{_SUMMARY[c]} AS {c}" if c in _SUMMARY else f"c.{c}" for c in (c.strip() for c in _INFO_COLUMNS.split(","))]
    sql = f"SELECT {', '.join(columns)} FROM calls c WHERE {where} ORDER BY {by}"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [CallInfo(**dict(row)) for row in conn.execute(sql, params)]


def resolve_call(conn: sqlite3.Connection, ref: str) -> str:
    """The call id a user typed: the whole id or an unambiguous start of it; unknown is bad input."""
    ref = ref.strip()
    rows = conn.execute(
        f"SELECT c.call_id FROM calls c WHERE {VISIBLE} AND (c.call_id = ? OR c.call_id LIKE ? ESCAPE '\\')",
        (ref, ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"),
    ).fetchall()
    ids = [r["call_id"] for r in rows]
    if ref in ids:
        return ref
    if len(ids) == 1 and ref:
        return ids[0]
    if not ids:
        raise BadInput(f"no call {ref!r} in the archive; 'callmon qa list' shows the call ids")
    raise BadInput(f"{ref!r} matches {len(ids)} calls ({', '.join(ids[:4])}...); give more of the call id")


def load_call(conn: sqlite3.Connection, call_id: str) -> CallDetail:
    """One call in full (call_id as `resolve_call` returns it)."""
    row = conn.execute(f"SELECT {_INFO_COLUMNS} FROM calls WHERE call_id = ?", (call_id,)).fetchone()
    if row is None:
        raise BadInput(f"no call {call_id!r} in the archive; 'callmon qa list' shows the call ids")
    points = [
        MetricPoint(**{c: r[c] for c in POINT_COLUMNS})
        for r in conn.execute(f"SELECT {', '.join(POINT_COLUMNS)} FROM metrics WHERE call_id = ? ORDER BY t", (call_id,))
    ]
    nudges = [
        NudgeRow(
            NudgeRecord(r["nudge_id"], r["kind"], r["t"], r["severity"], r["how"], r["cleared_t"],
                        None if r["followed"] is None else bool(r["followed"]), r["follow_s"]),
            r["message"], r["reason"], json.loads(r["evidence"] or "{}"),
        )
        for r in conn.execute("SELECT * FROM nudges WHERE call_id = ? ORDER BY t", (call_id,))
    ]
    segments = [
        Segment(r["role"], r["start"], r["end"], r["text"], r["words"])
        for r in conn.execute('SELECT role, start, "end", text, words FROM segments WHERE call_id = ? ORDER BY start', (call_id,))
    ]
    marks = [Mark(r["t"], r["kind"], r["note"]) for r in conn.execute(
        "SELECT t, kind, note FROM marks WHERE call_id = ? ORDER BY t", (call_id,))]
    return CallDetail(CallInfo(**dict(row)), points, nudges, segments, marks)


def scorecards(conn: sqlite3.Connection, filters: Filters, order: str = "heat") -> list[CallDetail]:
    """Every selected call in full (for export and the summary report)."""
    return [load_call(conn, info.call_id) for info in list_calls(conn, filters, order=order)]
