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

import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from ..errors import BadInput
from ..events import CallEnded, Event
from ..redact import redact_event
from .rows import POINT_COLUMNS, CallRows, Statement, utc_iso

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 10_000
WRITER_QUEUE = 64  # batches waiting for the live sink's writer thread; beyond that they coalesce (see ArchiveSink)

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

# Version 2: ingest claims, and at most one complete call per recording (a second is refused, not stored).
SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS claims (
    content_hash TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    source       TEXT,
    heartbeat    REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS calls_one_per_recording ON calls (content_hash) WHERE status = 'complete';
"""

__all__ = ["POINT_COLUMNS", "ArchiveSink", "connect", "store_call", "transaction", "utc_iso"]


def default_archive() -> Path:
    """The archive when no --db is given: $CALLMON_ARCHIVE, else the user's data directory."""
    env = os.environ.get("CALLMON_ARCHIVE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("callmon")) / "archive.sqlite"


def connect(path: str | Path, *, create: bool = False, busy_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """An autocommit connection in WAL mode with a busy timeout; the schema made (or upgraded) when `create`.

    Without `create`, a missing file is bad input (one line saying how to fill an archive). With it,
    the archive must be writable: a read-only file or folder, or one locked by another writer for
    longer than the busy timeout, is bad input before any work starts.
    """
    path = Path(path)
    if not create and not path.is_file():
        raise BadInput(f"no archive at {path}; ingest calls first (callmon qa ingest CALLS --db {path}) or give --db FILE")
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"cannot create the archive's folder {path.parent} ({exc.strerror}); give --db FILE") from None
    conn = None
    try:
        conn = sqlite3.connect(path, timeout=busy_ms / 1000, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
        _use_wal(conn, busy_ms)
        # NORMAL in WAL mode: a committed transaction survives the process being killed (only a power
        # cut may lose the last ones), and commits do not wait for fsync, so live calls never stall.
        conn.execute("PRAGMA synchronous = NORMAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if create and version < SCHEMA_VERSION:
            _upgrade(conn)
        elif version == 0:
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'calls'").fetchone()[0]
            if not tables:
                raise BadInput(f"{path} is not a callmon archive (no calls table); give the archive with --db FILE")
        elif version > SCHEMA_VERSION:
            raise BadInput(f"{path} was written by a newer callmon (archive schema {version}); upgrade callmon")
        if create:
            check_writable(conn, path)
    except BadInput:
        if conn is not None:
            conn.close()
        raise
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        raise archive_error(path, exc, busy_ms) from None
    return conn


def archive_error(path: Path, exc: sqlite3.Error, busy_ms: int = BUSY_TIMEOUT_MS) -> BadInput:
    """One line for what SQLite said about the archive: locked, read-only, or not an archive."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return BadInput(
            f"the archive {path} is locked by another process (an ingest or a live call writing to it) and stayed "
            f"locked for {busy_ms / 1000:.0f} s; run again when it is done, or give another --db FILE"
        )
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return BadInput(f"the archive {path} is read-only ({text}); make it and its folder writable, or give another --db FILE")
    return BadInput(f"{path} cannot be opened as an archive ({text}); give a callmon archive with --db FILE")


def _use_wal(conn: sqlite3.Connection, busy_ms: int) -> None:
    """Switch to WAL once; the switch does not wait on the busy handler, so two new writers retry it here."""
    deadline = time.monotonic() + busy_ms / 1000
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _upgrade(conn: sqlite3.Connection) -> None:
    """Create the schema, or bring an older archive up to date; a second writer racing here waits, then finds it done."""
    with transaction(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # again, under the write lock
        if version >= SCHEMA_VERSION:
            return
        if version == 0:
            for statement in _statements(SCHEMA):
                conn.execute(statement)
        for statement in _statements(SCHEMA_V2):
            try:
                conn.execute(statement)
            except sqlite3.IntegrityError:  # an old archive already holds a recording twice: keep it readable
                log.warning("the archive holds a recording twice; duplicates are not prevented until one is deleted")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def check_writable(conn: sqlite3.Connection, path: Path) -> None:
    """Take the write lock and give it back: a read-only or locked archive fails here, before any work."""
    try:
        with transaction(conn):
            conn.execute("DELETE FROM claims WHERE 0")
    except sqlite3.OperationalError as exc:
        raise archive_error(path, exc) from None


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


def store_call(conn: sqlite3.Connection, content_hash: str, statements: list[Statement]) -> str | None:
    """Write one ingested call whole, in one transaction; returns the call id it is already archived as, if so.

    The check and the write happen under the write lock, so two ingests of one recording store it
    once, whatever their timing; a `partial` call from an older, killed run goes in the same transaction.
    """
    with transaction(conn):
        existing = find_by_hash(conn, content_hash)
        if existing:
            conn.execute("DELETE FROM claims WHERE content_hash = ?", (content_hash,))
            return existing
        for row in conn.execute(
            "SELECT call_id FROM calls WHERE content_hash = ? AND status = 'partial'", (content_hash,)
        ).fetchall():
            delete_call(conn, row["call_id"])
        for sql, params in statements:
            conn.execute(sql, params)
        conn.execute("DELETE FROM claims WHERE content_hash = ?", (content_hash,))  # done: whoever claimed it
    return None


class ArchiveSink:
    """A pipeline sink that archives a live call while it runs, through its own writer thread.

    The pipeline's thread never touches SQLite: it turns events into statements (`CallRows`, after
    redaction) and hands a batch to the writer when something a reader wants arrives (a final, a
    nudge, a clear, a bookmark, the end) or after 2 s of call time. Backpressure: the queue holds
    `WRITER_QUEUE` batches; when it is full (the archive is locked by another writer for long)
    batches coalesce in the sink and go as one when there is room, so nothing is dropped and the
    call never waits. `close()` (at the call's end) hands over the rest and waits until it is written.
    A database error is logged once and archiving stops (`error` says why); the call goes on.
    """

    def __init__(self, db_path: str | Path, *, agent_id: str | None = None, call_date: datetime | None = None) -> None:
        self.db_path = Path(db_path)
        self.rows = CallRows(agent_id=agent_id, call_date=call_date)
        self.error: str | None = None
        self._conn = connect(self.db_path, create=True)  # a bad archive fails here, before the call starts
        self._queue: queue.Queue[list[Statement] | None] = queue.Queue(WRITER_QUEUE)
        self._backlog: list[Statement] = []
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name="archive-writer", daemon=True)
        self._writer.start()

    @property
    def call_id(self) -> str | None:
        """The call being archived (known from `call.started`)."""
        return self.rows.call_id

    @property
    def completed(self) -> bool:
        """True once `call.ended` has been handed to the writer."""
        return self.rows.completed

    def __call__(self, event: Event) -> None:
        """Turn the event (redacted) into statements; hand a batch to the writer when it is worth it."""
        if self.error is not None or self._closed:
            return
        if self.rows.take(redact_event(event)):
            self._hand_over(block=isinstance(event, CallEnded))

    def _hand_over(self, block: bool) -> None:
        self._backlog += self.rows.drain()
        if not self._backlog:
            return
        try:
            self._queue.put(self._backlog, block=block)
        except queue.Full:
            return  # the writer is behind: the batch waits here and goes with the next one
        self._backlog = []

    def _write_loop(self) -> None:
        conn = self._conn
        while (batch := self._queue.get()) is not None:
            try:
                if self.error is None:  # after an error: drain until closed
                    with transaction(conn):
                        for sql, params in batch:
                            conn.execute(sql, params)
            except sqlite3.Error as exc:
                self.error = f"archiving to {self.db_path} stopped ({exc})"
                log.warning("%s; the call goes on without the archive", self.error)
            finally:
                self._queue.task_done()
        self._queue.task_done()
        conn.close()

    def sync(self) -> None:
        """Wait until everything handed over so far is written (not on the audio thread: it waits on SQLite)."""
        self._hand_over(block=True)
        self._queue.join()

    def close(self) -> None:
        """Hand over what is left (a call cut off keeps its last second) and wait until it is written."""
        if self._closed:
            return
        self._closed = True
        self.rows.cut_off()
        self._hand_over(block=True)
        self._queue.put(None)
        self._writer.join()
