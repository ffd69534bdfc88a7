"""Which ingest is replaying which recording: claims in the archive, so no recording is done twice.

Before a recording goes to a worker, the ingest claims its content hash in the `claims` table (one
short write transaction). A second ingest of the same files into the same archive, at the same
time, finds the claim and leaves that recording to its owner. A claim is released when its call
is stored or its run ends; one left by a run that was killed is stale, and taken over, when its
process is gone (same host) or it has not been refreshed for `STALE_S` (any host).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
import uuid
from dataclasses import dataclass

from .archive import find_by_hash, transaction

STALE_S = 60.0  # a claim not refreshed for this long belongs to a run that is gone
HEARTBEAT_S = 10.0  # how often a run refreshes its claims


@dataclass(frozen=True)
class Owner:
    """One ingest run: a fresh id, and where it runs (to tell when it is gone)."""

    run_id: str
    host: str
    pid: int

    @classmethod
    def this_run(cls) -> Owner:
        """The owner for the current process's run."""
        return cls(uuid.uuid4().hex, socket.gethostname(), os.getpid())

    def describe(self) -> str:
        """Where the run is, for messages."""
        return f"pid {self.pid} on {self.host}"


@dataclass(frozen=True)
class Taken:
    """Why a recording could not be claimed: already archived, or another live run has it."""

    call_id: str | None = None
    holder: Owner | None = None

    def why(self) -> str:
        """The reason, as the progress line says it."""
        if self.call_id:
            return f"already archived as {self.call_id}"
        assert self.holder is not None
        return f"being ingested by another run ({self.holder.describe()})"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(holder: Owner, heartbeat: float, now: float) -> bool:
    """True when the run holding a claim is gone: its process has ended here, or it stopped refreshing."""
    if holder.host == socket.gethostname() and not _alive(holder.pid):
        return True
    return now - heartbeat > STALE_S


def claim(conn: sqlite3.Connection, owner: Owner, content_hash: str, source: str) -> Taken | None:
    """Claim a recording for this run; None when it is ours now, else why not."""
    now = time.time()
    with transaction(conn):
        archived = find_by_hash(conn, content_hash)
        if archived:
            return Taken(call_id=archived)
        row = conn.execute("SELECT run_id, host, pid, heartbeat FROM claims WHERE content_hash = ?", (content_hash,)).fetchone()
        if row is not None and row["run_id"] != owner.run_id:
            holder = Owner(row["run_id"], row["host"], row["pid"])
            if not is_stale(holder, row["heartbeat"], now):
                return Taken(holder=holder)
        conn.execute(
            "INSERT OR REPLACE INTO claims (content_hash, run_id, host, pid, source, heartbeat) VALUES (?, ?, ?, ?, ?, ?)",
            (content_hash, owner.run_id, owner.host, owner.pid, source, now),
        )
    return None


def refresh(conn: sqlite3.Connection, owner: Owner) -> None:
    """Show that this run is alive: its claims are not stale."""
    with transaction(conn):
        conn.execute("UPDATE claims SET heartbeat = ? WHERE run_id = ?", (time.time(), owner.run_id))


def release(conn: sqlite3.Connection, owner: Owner, content_hash: str | None = None) -> None:
    """Give back one claim of this run, or all of them."""
    with transaction(conn):
        if content_hash is None:
            conn.execute("DELETE FROM claims WHERE run_id = ?", (owner.run_id,))
        else:
            conn.execute("DELETE FROM claims WHERE run_id = ? AND content_hash = ?", (owner.run_id, content_hash))
