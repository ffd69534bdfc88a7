"""A call's events as archive statements: the one translation both archive writers use.

`CallRows` is pure (no I/O): it takes the call's events, already redacted, and yields the SQL
statements that store them. The live sink (`archive.ArchiveSink`) hands them to its writer thread
in small batches as the call goes; QA ingest collects them in a Dask worker and the driver writes
the whole call in one transaction (`archive.store_call`). Metrics are downsampled to one row per
second (`timeline.Downsampler`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime

from ..events import Bookmark, CallEnded, CallStarted, Event, Metrics, Nudge, NudgeCleared, SupervisorRequested, TranscriptFinal
from .timeline import Downsampler, MetricPoint

FLUSH_EVERY_S = 2.0  # call seconds of metrics between batches, at most
POINT_COLUMNS = tuple(MetricPoint.__dataclass_fields__)

Statement = tuple[str, tuple]


def utc_iso(moment: datetime) -> str:
    """A moment as the archive stores it: ISO 8601 in UTC, to the second, with a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CallRows:
    """Turns one call's redacted events into statements; `take` says when a batch is worth writing."""

    def __init__(
        self,
        *,
        source_path: str | None = None,
        content_hash: str | None = None,
        agent_id: str | None = None,
        call_date: datetime | None = None,
    ) -> None:
        self.source_path = source_path
        self.content_hash = content_hash
        self.agent_id = agent_id
        self.call_date = utc_iso(call_date or datetime.now(UTC))
        self.call_id: str | None = None
        self.completed = False
        self._down = Downsampler()
        self._pending: list[Statement] = []
        self._flushed_t = 0.0

    def take(self, event: Event) -> bool:
        """Add the event's statements; True when a reader would want them written now."""
        if isinstance(event, Metrics):
            if self.call_id is None:
                return False
            point = self._down.push(event)
            if point is not None:
                self._point(point)
            if event.t - self._flushed_t >= FLUSH_EVERY_S:
                self._flushed_t = event.t
                return True
            return False
        if isinstance(event, CallStarted):
            self.call_id = event.call_id
            self._pending.append((
                "INSERT INTO calls (call_id, status, content_hash, source, agent_id, call_date, model, archived_at) "
                "VALUES (?, 'partial', ?, ?, ?, ?, ?, ?)",
                (event.call_id, self.content_hash, self.source_path or event.source, self.agent_id or event.agent_id,
                 self.call_date, event.model, utc_iso(datetime.now(UTC))),
            ))
        elif self.call_id is None:
            return False  # nothing is stored before the call's row exists
        elif isinstance(event, TranscriptFinal):
            self._pending.append((
                'INSERT INTO segments (call_id, role, start, "end", text, words) VALUES (?, ?, ?, ?, ?, ?)',
                (event.call_id, event.role, event.start, event.end, event.text,
                 json.dumps([asdict(w) for w in event.words], ensure_ascii=False)),
            ))
        elif isinstance(event, Nudge):
            self._pending.append((
                "INSERT OR REPLACE INTO nudges (call_id, nudge_id, t, kind, severity, message, reason, evidence) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (event.call_id, event.id, event.t, event.kind, event.severity, event.message, event.reason,
                 json.dumps(event.evidence, ensure_ascii=False, default=str)),
            ))
        elif isinstance(event, NudgeCleared):
            self._pending.append((
                "UPDATE nudges SET cleared_t = ?, how = ?, followed = ?, follow_s = ? WHERE call_id = ? AND nudge_id = ?",
                (event.t, event.how, None if event.followed is None else int(event.followed), event.follow_s,
                 event.call_id, event.id),
            ))
        elif isinstance(event, (Bookmark, SupervisorRequested)):
            self._pending.append((
                "INSERT INTO marks (call_id, t, kind, note) VALUES (?, ?, ?, ?)", (event.call_id, event.t, event.type, event.note),
            ))
        elif isinstance(event, CallEnded):
            self._end(event)
        else:
            return False  # partials, status: not archived
        self._flushed_t = event.t
        return True

    def _point(self, p: MetricPoint) -> None:
        values = tuple(getattr(p, c) for c in POINT_COLUMNS)
        marks = ", ".join("?" for _ in POINT_COLUMNS)
        self._pending.append((
            f"INSERT OR REPLACE INTO metrics (call_id, {', '.join(POINT_COLUMNS)}) VALUES (?, {marks})", (self.call_id, *values),
        ))

    def _end(self, event: CallEnded) -> None:
        point = self._down.flush()
        if point is not None:
            self._point(point)
        self._pending.append((
            "UPDATE calls SET status = 'complete', duration = ?, peak_heat = ?, nudges_raised = ?, nudges_followed = ?, "
            "talk_ratio = ?, error = ? WHERE call_id = ?",
            (event.duration, event.peak_heat, event.nudges_raised, event.nudges_followed, event.talk_ratio, event.error,
             event.call_id),
        ))
        self.completed = True

    def cut_off(self) -> None:
        """The call stops without `call.ended` (process ending): keep the second of metrics in progress."""
        if not self.completed and self.call_id is not None:
            point = self._down.flush()
            if point is not None:
                self._point(point)

    def drain(self) -> list[Statement]:
        """The statements taken since the last drain, in order."""
        out, self._pending = self._pending, []
        return out
