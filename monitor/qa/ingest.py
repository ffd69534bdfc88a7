"""`callmon qa ingest`: a batch of recordings replayed on Dask workers into the archive.

The driver (this process) finds the files and hashes them (a file already archived, under any
name, is skipped), claims each recording in the archive just before it goes to a worker (a second
ingest running at the same time leaves it alone), and submits it to the cluster: a LocalCluster
of worker processes by default, or an existing one (`--scheduler`). Each worker replays the call
(monitor/qa/cluster.py) and sends back its rows, redacted; the driver writes each call whole, in
one transaction, as it finishes. So a batch killed at any point (even kill -9: the local workers
die with it) leaves only whole calls, and running the same command again does the rest.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from ..config import Config
from ..errors import BadInput, PipelineError
from . import claims
from .archive import archive_error, connect, find_by_hash, store_call
from .cluster import Job, Outcome, one_line

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
BAR = 16  # characters of the progress bar


@dataclass
class Summary:
    """The batch's result, for the final lines and the exit code."""

    total: int = 0
    ingested: list[Outcome] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    left_to_others: int = 0  # claimed by another ingest running at the same time
    failed: list[Outcome] = field(default_factory=list)
    interrupted: bool = False

    def exit_code(self) -> int:
        """0 all in or skipped; 1 a pipeline or archive failure; 2 bad input; 130 interrupted."""
        if self.interrupted:
            return 130
        if any(o.status == "error" for o in self.failed):
            return 1
        return 2 if self.failed else 0


# ---------------------------------------------------------------------------------------------
# finding and hashing the files


def collect(paths: list[str]) -> list[Path]:
    """The audio files named or found (recursively) under the paths; a bad path is bad input."""
    found: list[Path] = []
    for name in paths:
        path = Path(name).expanduser()
        if not path.exists():
            raise BadInput(f"no such file or folder: {name}")
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
            if not inside:
                raise BadInput(f"{name} is a folder with no audio files ({', '.join(e[1:] for e in AUDIO_EXTENSIONS)}) in it")
            found += inside
        else:
            found.append(path)  # named explicitly: tried whatever its extension, reported if it is not audio
    seen: set[Path] = set()
    unique = []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def file_hash(path: Path) -> str:
    """SHA-256 of the file's bytes: the same recording under another name is the same call."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def probe_duration(path: Path) -> float | None:
    """The duration the file's header claims (for progress and ETA only); None when unreadable."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            streams = container.streams.audio
            if streams and streams[0].duration is not None and streams[0].time_base is not None:
                return float(streams[0].duration * streams[0].time_base)
            if container.duration:
                return container.duration / 1_000_000
    except Exception:  # noqa: BLE001 - any unreadable file: the worker reports it properly
        return None
    return None


def file_date(path: Path) -> datetime:
    """When the call happened, as far as the file says: its modification time, in UTC."""
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


# ---------------------------------------------------------------------------------------------
# the driver


@dataclass
class BatchOptions:
    """What the user asked for."""

    db: Path
    paths: list[str]
    workers: int | None = None  # local cluster size (default: one per core)
    scheduler: str | None = None  # an existing cluster instead, tcp://HOST:PORT
    agent_id: str | None = None
    call_date: datetime | None = None
    quiet: bool = False
    verbose: bool = False


def _open_archive(opts: BatchOptions, cfg: Config) -> sqlite3.Connection:
    """The archive, created if new; read-only or locked past `qa.lock_wait_s` is bad input, before any work."""
    return connect(opts.db, create=True, busy_ms=int(cfg.qa.lock_wait_s * 1000))


def plan(opts: BatchOptions, cfg: Config) -> tuple[list[Job], Summary]:
    """Hash every file; those already archived (or repeated in this batch) are skipped."""
    files = collect(opts.paths)
    summary = Summary(total=len(files))
    jobs: list[Job] = []
    conn = _open_archive(opts, cfg)
    try:
        first_of: dict[str, str] = {}
        for path in files:
            try:
                digest = file_hash(path)
            except OSError as exc:
                summary.failed.append(Outcome(str(path), "bad", message=f"cannot read it ({exc.strerror})"))
                continue
            existing = find_by_hash(conn, digest)
            if existing:
                summary.skipped.append((str(path), f"already archived as {existing}"))
            elif digest in first_of:
                summary.skipped.append((str(path), f"same recording as {first_of[digest]}"))
            else:
                first_of[digest] = str(path)
                jobs.append(Job(str(path), str(path.resolve()), digest, probe_duration(path), opts.agent_id or cfg.call.agent_id,
                                opts.call_date or file_date(path)))
    except sqlite3.Error as exc:
        raise archive_error(opts.db, exc) from None
    finally:
        conn.close()
    return jobs, summary


class ProgressLine:
    """Progress on stderr: a live line on a terminal (redrawn every second), else a line per file.

    Speed is call seconds replayed per wall second (= call-hours per hour), counting the calls
    still running as far as their workers have reported; until the first report, the ETA is an
    estimate from `qa.eta_speed` per worker, marked "~".
    """

    def __init__(self, err: TextIO, total: int, audio_total_s: float, quiet: bool, eta_speed: float) -> None:
        self.err = err
        self.total = total
        self.audio_total_s = audio_total_s  # as the files' headers claim: for the ETA
        self.live = err.isatty() and not quiet
        self.quiet = quiet
        self.eta_speed = eta_speed
        self.slots = 1
        self.done = 0
        self.audio_done_s = 0.0  # call seconds replayed by finished calls
        self.audio_settled_s = 0.0  # header durations of the files finished either way
        self.running: dict[str, tuple[str, float]] = {}  # content hash -> (file name, call seconds reported)
        self.lock = threading.Lock()  # worker reports arrive on the Dask client's thread
        self.writing = threading.Lock()  # the ticker thread and the driver both write the line
        self.t0 = time.monotonic()
        self._stop = threading.Event()

    def started(self, job: Job) -> None:
        """A call went to a worker."""
        with self.lock:
            self.running[job.content_hash] = (Path(job.path).name, 0.0)

    def reported(self, event: tuple[float, dict]) -> None:
        """A worker says how far a call has got (a Dask event: (time, {"hash", "t"}))."""
        msg = event[1]
        with self.lock:
            if msg.get("hash") in self.running:
                name, _ = self.running[msg["hash"]]
                self.running[msg["hash"]] = (name, float(msg["t"]))

    def finished(self, job: Job, replayed_s: float) -> None:
        """One file is done (ingested, failed, or left to another run)."""
        with self.lock:
            self.running.pop(job.content_hash, None)
            self.done += 1
            self.audio_done_s += replayed_s
            self.audio_settled_s += job.audio_s if job.audio_s is not None else replayed_s

    def note(self, text: str, always: bool = False) -> None:
        """A line about one file (on a terminal, only failures, printed above the live line)."""
        if self.quiet or (self.live and not always):
            return
        prefix = "\r\033[K" if self.live else ""
        with self.writing:
            self.err.write(f"{prefix}[{self.done}/{self.total}] {text}\n")
        self.redraw()

    def status(self) -> str:
        """One line, under 80 columns: calls done, speed, ETA, the file being worked on."""
        with self.lock:
            elapsed = max(1e-6, time.monotonic() - self.t0)
            in_progress = sum(t for _, t in self.running.values())
            replayed = self.audio_done_s + in_progress
            left = max(0.0, self.audio_total_s - self.audio_settled_s - in_progress)
            measured = replayed > 0 and elapsed >= 1.0
            speed = replayed / elapsed if measured else self.eta_speed * self.slots
            current = next(iter(self.running.values()), ("", 0.0))[0]
            done = self.done
        eta = ("" if measured else "~") + _duration(left / speed)
        rate = f"{speed:.1f} call-h/h" if measured else "starting"
        line = f"ingest {done}/{self.total} calls, {rate}, ETA {eta}" + (f", now {current}" if current else "")
        return line if len(line) < 80 else line[:78] + "…"

    def redraw(self) -> None:
        """The live line, in place."""
        if not self.live:
            self.err.flush()
            return
        line = self.status()
        with self.writing:
            self.err.write("\r" + line + "\033[K")
            self.err.flush()

    def start_ticking(self) -> None:
        """On a terminal, redraw every second from now on (the cluster and the models take a while to start)."""
        if self.live:
            threading.Thread(target=self._tick, name="ingest-progress", daemon=True).start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self.redraw()

    def finish(self) -> None:
        """End the live line."""
        self._stop.set()
        if self.live:
            with self.writing:
                self.err.write("\r\033[K")
                self.err.flush()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def run_batch(opts: BatchOptions, cfg: Config, err: TextIO = sys.stderr) -> Summary:
    """Ingest the files; returns the summary (also printed)."""
    jobs, summary = plan(opts, cfg)
    progress = ProgressLine(err, summary.total, sum(j.audio_s or 0.0 for j in jobs), opts.quiet, cfg.qa.eta_speed)
    for path, why in summary.skipped:  # settled before any worker starts
        progress.done += 1
        progress.note(f"skipped {path} ({why})")
    for o in summary.failed:
        progress.done += 1
        progress.note(_failure(o), always=True)
    try:
        if jobs:
            _run_on_cluster(opts, cfg, jobs, summary, progress)
    finally:
        progress.finish()
    _print_summary(summary, err, time.monotonic() - progress.t0)
    return summary


def _run_on_cluster(opts: BatchOptions, cfg: Config, jobs: list[Job], summary: Summary, progress: ProgressLine) -> None:
    from distributed import wait

    from .cluster import open_client, replay_call, worker_slots

    owner = claims.Owner.this_run()
    topic = f"callmon-ingest-{owner.run_id}"
    workers = max(1, min(opts.workers or os.cpu_count() or 1, len(jobs)))
    conn = _open_archive(opts, cfg)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops the batch like Ctrl-C
    try:
        where = f"the cluster at {opts.scheduler}" if opts.scheduler else f"{workers} local worker(s)"
        progress.slots = 1 if opts.scheduler else workers  # for the first ETA; the cluster's own count below
        progress.redraw()
        progress.start_ticking()
        with open_client(cfg, opts.scheduler, workers, opts.verbose) as client:
            client.subscribe_topic(topic, progress.reported)
            progress.slots = worker_slots(client)
            if not progress.quiet:
                hours = progress.audio_total_s / 3600
                progress.note(f"ingesting {len(jobs)} call(s) ({hours:.2f} h of audio) on {where}", always=True)
                if not progress.live:
                    progress.err.write(progress.status() + "\n")
            waiting, in_flight = deque(jobs), {}
            beat = time.monotonic()
            while waiting or in_flight:
                # Claim just before submitting (2 calls queued per worker): two ingests at once share the work.
                while waiting and len(in_flight) < 2 * progress.slots:
                    job = waiting.popleft()
                    taken = claims.claim(conn, owner, job.content_hash, job.source)
                    if taken is not None:
                        summary.skipped.append((job.path, taken.why()))
                        summary.left_to_others += taken.holder is not None
                        progress.finished(job, 0.0)
                        progress.note(f"skipped {job.path} ({taken.why()})", always=taken.holder is not None)
                        continue
                    key = f"replay-{Path(job.path).stem}-{job.content_hash[:12]}-{owner.run_id[:8]}"
                    future = client.submit(replay_call, job, topic, key=key, pure=False)
                    in_flight[future] = job
                    progress.started(job)
                if in_flight:
                    try:
                        wait(list(in_flight), timeout=1.0, return_when="FIRST_COMPLETED")
                    except TimeoutError:
                        pass
                for future in [f for f in in_flight if f.done()]:
                    job = in_flight.pop(future)
                    outcome = _result(future, job)
                    if outcome.fatal:
                        raise _fatal(outcome)
                    _settle(conn, owner, opts.db, outcome, job, summary, progress)
                if time.monotonic() - beat >= claims.HEARTBEAT_S:
                    claims.refresh(conn, owner)
                    beat = time.monotonic()
    except KeyboardInterrupt:
        summary.interrupted = True
    except sqlite3.Error as exc:
        raise PipelineError(
            f"cannot write to the archive {opts.db} ({exc}); the calls stored are kept, run again for the rest"
        ) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        try:
            claims.release(conn, owner)
        except sqlite3.Error:
            pass  # the claims go stale when this process is gone
        conn.close()


def _settle(conn: sqlite3.Connection, owner: claims.Owner, db: Path, outcome: Outcome, job: Job, summary: Summary,
            progress: ProgressLine) -> None:
    """Store a finished call whole (or record why not), and give its claim back."""
    for note in outcome.notes:
        progress.note(f"warning: {note}", always=True)
    if outcome.status != "ingested":
        claims.release(conn, owner, job.content_hash)
        progress.finished(job, 0.0)
        summary.failed.append(outcome)
        progress.note(_failure(outcome), always=True)
        return
    existing = store_call(conn, job.content_hash, outcome.statements)
    progress.finished(job, outcome.audio_s)
    if existing:  # another run stored it meanwhile (it took over a claim it thought stale): not stored twice
        summary.skipped.append((job.path, f"already archived as {existing}"))
        progress.note(f"skipped {job.path} (archived meanwhile as {existing})")
        return
    summary.ingested.append(outcome)
    progress.note(f"ingested {job.path} ({_duration(outcome.audio_s)} of audio) as {outcome.call_id}")


def _result(future, job: Job) -> Outcome:  # noqa: ANN001 - a distributed.Future
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker:
        return Outcome(job.path, "error", message="the worker replaying it died, twice (out of memory?)")
    except Exception as exc:  # noqa: BLE001 - a worker bug: report it against its file, go on
        return Outcome(job.path, "error", message=f"{type(exc).__name__}: {one_line(exc)}")


def _fatal(outcome: Outcome) -> Exception:
    if outcome.status == "bad":
        return BadInput(outcome.message)
    return PipelineError(outcome.message)


def _failure(o: Outcome) -> str:
    """One line for a failed file; the file is named once (most messages name it already)."""
    return f"failed: {o.message}" if o.path in o.message else f"failed: {o.path}: {o.message}"


def _print_summary(summary: Summary, err: TextIO, elapsed: float) -> None:
    audio = sum(o.audio_s for o in summary.ingested)
    head = "interrupted: " if summary.interrupted else ""
    already = len(summary.skipped) - summary.left_to_others
    others = f", left {summary.left_to_others} to another ingest running now" if summary.left_to_others else ""
    err.write(
        f"{head}ingested {len(summary.ingested)} call(s) ({audio / 3600:.2f} h of audio) in {_duration(elapsed)}, "
        f"skipped {already} already archived{others}, failed {len(summary.failed)}\n"
    )
    for o in summary.failed:
        err.write(f"  {_failure(o)}\n")
    if summary.interrupted:
        err.write("  run the same command again to ingest the rest (finished calls are kept)\n")
    elif summary.left_to_others:
        err.write("  run the same command again after the other ingest ends, to pick up any it could not finish\n")
    err.flush()
