"""The call archive: one SQLite file (WAL) and the sink that writes a call into it as it happens.

Several writers share one archive (ingest workers, live calls), so every connection runs in WAL
mode with a busy timeout, and every write is a short `BEGIN IMMEDIATE` transaction: a writer
waits its turn instead of failing, and readers are never blocked. A call is written while it
runs; it is marked `complete` only at `call.ended`, so a process killed part-way leaves a
`partial` call that queries ignore and that the next ingest of the same file replaces.

Everything is redacted (`monitor.redact.redact_event`) before it is stored: transcripts are
personal data. The schema is described in docs/QA.md.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from ..errors import BadInput
from ..events import Bookmark, CallEnded, CallStarted, Event, Metrics, Nudge, NudgeCleared, SupervisorRequested, TranscriptFinal
from ..redact import redact_event
from .timeline import Downsampler, MetricPoint

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000
FLUSH_EVERY_S = 2.0  # call seconds of metrics between writes, at most

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_id         TEXT PRIMARY KEY,
    status          TEXT NOT NULL CHECK (status IN ('partial', 'complete')),
    content_hash    TEXT,
    source          TEXT,
    agent_id        TEXT,
    call_date       TEXT NOT NULL,
    model           TEXT,
    duration        REAL,
    peak_heat       INTEGER,
    nudges_raised   INTEGER,
    nudges_followed INTEGER,
    talk_ratio      REAL,
    error           TEXT,
    archived_at     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_by_hash ON calls (content_hash);
CREATE INDEX IF NOT EXISTS calls_by_date ON calls (call_date);

CREATE TABLE IF NOT EXISTS segments (
    id      INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL,
    role    TEXT NOT NULL,
    start   REAL NOT NULL,
    "end"   REAL NOT NULL,
    text    TEXT NOT NULL,
    words   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS segments_by_call ON segments (call_id, start);
CREATE VIRTUAL TABLE IF NOT EXISTS segments_fts USING fts5 (
    text, content = 'segments', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS segments_ai AFTER INSERT ON segments BEGIN
    INSERT INTO segments_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS segments_ad AFTER DELETE ON segments BEGIN
    INSERT INTO segments_fts (segments_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;

CREATE TABLE IF NOT EXISTS metrics (
    call_id             TEXT NOT NULL,
    t                   REAL NOT NULL,
    heat                INTEGER,
    heat_mean           REAL,
    customer_loud_db    REAL,
    agent_loud_db       REAL,
    customer_pace_wpm   REAL,
    agent_pace_wpm      REAL,
    hostility           REAL,
    agent_speaking_s    REAL NOT NULL,
    customer_speaking_s REAL NOT NULL,
    overlap_s           REAL NOT NULL,
    quiet_s             REAL NOT NULL,
    interruptions       INTEGER,
    talk_ratio          REAL,
    PRIMARY KEY (call_id, t)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS nudges (
    call_id   TEXT NOT NULL,
    nudge_id  TEXT NOT NULL,
    t         REAL NOT NULL,
    kind      TEXT NOT NULL,
    severity  TEXT NOT NULL,
    message   TEXT NOT NULL,
    reason    TEXT NOT NULL,
    evidence  TEXT NOT NULL,
    cleared_t REAL,
    how       TEXT,
    followed  INTEGER,
    follow_s  REAL,
    PRIMARY KEY (call_id, nudge_id)
);
CREATE INDEX IF NOT EXISTS nudges_by_kind ON nudges (kind);

CREATE TABLE IF NOT EXISTS marks (
    call_id TEXT NOT NULL,
    t       REAL NOT NULL,
    kind    TEXT NOT NULL,
    note    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS marks_by_call ON marks (call_id, t);
"""

POINT_COLUMNS = tuple(MetricPoint.__dataclass_fields__)


def default_archive() -> Path:
    """The archive when no --db is given: $CALLMON_ARCHIVE, else the user's data directory."""
    env = os.environ.get("CALLMON_ARCHIVE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("callmon")) / "archive.sqlite"


def connect(path: str | Path, *, create: bool = False) -> sqlite3.Connection:
    """An autocommit connection in WAL mode with a busy timeout; the schema made when `create`.

    Without `create`, a missing file is bad input (one line saying how to fill an archive).
    """
    path = Path(path)
    if not create and not path.is_file():
        raise BadInput(f"no archive at {path}; ingest calls first (callmon qa ingest CALLS --db {path}) or give --db FILE")
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"cannot create the archive's folder {path.parent} ({exc.strerror}); give --db FILE") from None
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode: a committed transaction survives the process being killed (only a power
        # cut may lose the last ones), and commits do not wait for fsync, so live calls never stall.
        conn.execute("PRAGMA synchronous = NORMAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and create:
            with transaction(conn):
                for statement in _statements(SCHEMA):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version == 0:
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'calls'").fetchone()[0]
            if not tables:
                conn.close()
                raise BadInput(f"{path} is not a callmon archive (no calls table); give the archive with --db FILE")
        elif version > SCHEMA_VERSION:
            conn.close()
            raise BadInput(f"{path} was written by a newer callmon (archive schema {version}); upgrade callmon")
    except sqlite3.DatabaseError as exc:
        raise BadInput(f"{path} cannot be opened as an archive ({exc}); give a callmon archive with --db FILE") from None
    return conn


def _statements(script: str) -> list[str]:
    """The statements of the schema script (triggers contain ';' inside BEGIN ... END)."""
    out, current = [], []
    for line in script.strip().splitlines():
        current.append(line)
        text = "\n".join(current).strip()
        if text.endswith(";") and sqlite3.complete_statement(text):
            out.append(text)
            current = []
    return out


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the write lock up front (waiting under the busy timeout)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def delete_call(conn: sqlite3.Connection, call_id: str) -> None:
    """Remove a call and everything recorded for it (inside the caller's transaction)."""
    for table in ("segments", "metrics", "nudges", "marks", "calls"):
        conn.execute(f"DELETE FROM {table} WHERE call_id = ?", (call_id,))


def find_by_hash(conn: sqlite3.Connection, content_hash: str) -> str | None:
    """The complete call archived from a file with this content, if any."""
    row = conn.execute(
        "SELECT call_id FROM calls WHERE content_hash = ? AND status = 'complete' LIMIT 1", (content_hash,)
    ).fetchone()
    return row["call_id"] if row else None


def utc_iso(moment: datetime) -> str:
    """A moment as the archive stores it: ISO 8601 in UTC, to the second, with a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ArchiveSink:
    """A pipeline sink that archives the call while it runs.

    It never holds the pipeline up for long: metrics are downsampled to one row per second and
    buffered, and writes happen in small transactions when something a reader wants arrives (a
    final, a nudge, a clear, a bookmark, the end) or after `FLUSH_EVERY_S` of call time. A
    database error is logged once and archiving stops (`error` says why); the call goes on.
    """

    def __init__(
        self,
        db_path: str | Path,
        *,
        source_path: str | None = None,
        content_hash: str | None = None,
        agent_id: str | None = None,
        call_date: datetime | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.source_path = source_path
        self.content_hash = content_hash
        self.agent_id = agent_id
        self.call_date = utc_iso(call_date or datetime.now(UTC))
        self.call_id: str | None = None
        self.completed = False
        self.error: str | None = None
        self._conn: sqlite3.Connection | None = connect(self.db_path, create=True)
        self._down = Downsampler()
        self._pending: list[tuple[str, tuple]] = []
        self._flushed_t = 0.0

    def __call__(self, event: Event) -> None:
        """Buffer the event (redacted); write the buffer when it is worth it."""
        if self._conn is None:
            return
        try:
            self._take(redact_event(event))
        except sqlite3.Error as exc:
            self._fail(exc)

    def _take(self, event: Event) -> None:
        if isinstance(event, Metrics):
            point = self._down.push(event)
            if point is not None:
                self._queue_point(point)
            if event.t - self._flushed_t >= FLUSH_EVERY_S:
                self._flush(event.t)
            return
        if isinstance(event, CallStarted):
            self._start(event)
            return
        if isinstance(event, TranscriptFinal):
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
                "INSERT INTO marks (call_id, t, kind, note) VALUES (?, ?, ?, ?)",
                (event.call_id, event.t, event.type, event.note),
            ))
        elif isinstance(event, CallEnded):
            self._end(event)
            return
        else:
            return  # partials, status: not archived
        self._flush(event.t)

    def _start(self, event: CallStarted) -> None:
        """Open the call's row; a partial call from an earlier, killed run of the same file goes first."""
        assert self._conn is not None
        self.call_id = event.call_id
        with transaction(self._conn) as conn:
            if self.content_hash:
                for row in conn.execute(
                    "SELECT call_id FROM calls WHERE content_hash = ? AND status = 'partial'", (self.content_hash,)
                ).fetchall():
                    delete_call(conn, row["call_id"])
            conn.execute(
                "INSERT INTO calls (call_id, status, content_hash, source, agent_id, call_date, model, archived_at) "
                "VALUES (?, 'partial', ?, ?, ?, ?, ?, ?)",
                (event.call_id, self.content_hash, self.source_path or event.source, self.agent_id or event.agent_id,
                 self.call_date, event.model, utc_iso(datetime.now(UTC))),
            )

    def _queue_point(self, p: MetricPoint) -> None:
        assert self.call_id is not None
        values = tuple(getattr(p, c) for c in POINT_COLUMNS)
        self._pending.append((
            f"INSERT OR REPLACE INTO metrics (call_id, {', '.join(POINT_COLUMNS)}) "
            f"VALUES (?, {', '.join('?' for _ in POINT_COLUMNS)})",
            (self.call_id, *values),
        ))

    def _end(self, event: CallEnded) -> None:
        point = self._down.flush()
        if point is not None:
            self._queue_point(point)
        self._pending.append((
            "UPDATE calls SET status = 'complete', duration = ?, peak_heat = ?, nudges_raised = ?, nudges_followed = ?, "
            "talk_ratio = ?, error = ? WHERE call_id = ?",
            (event.duration, event.peak_heat, event.nudges_raised, event.nudges_followed, event.talk_ratio, event.error,
             event.call_id),
        ))
        self._flush(event.t)
        self.completed = True

    def _flush(self, t: float) -> None:
        self._flushed_t = t
        if not self._pending or self._conn is None or self.call_id is None:
            return
        pending, self._pending = self._pending, []
        with transaction(self._conn) as conn:
            for sql, params in pending:
                conn.execute(sql, params)

    def _fail(self, exc: sqlite3.Error) -> None:
        self.error = f"archiving to {self.db_path} stopped ({exc})"
        log.warning("%s; the call goes on without the archive", self.error)
        self._close_conn()

    def close(self) -> None:
        """Write what is buffered and close the connection (CallSession.run calls this at the end)."""
        if self._conn is None:
            return
        try:
            point = None if self.completed else self._down.flush()
            if point is not None and self.call_id is not None:
                self._queue_point(point)
            self._flush(self._flushed_t)
        except sqlite3.Error as exc:
            self._fail(exc)
        self._close_conn()

    def _close_conn(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None
