"""`callmon qa ingest`: a batch of recordings replayed through the pipeline into the archive.

The parent finds the files, hashes them (a file already archived, under any name, is skipped),
and hands the rest to a pool of worker processes. Each worker loads its own model once and runs
each call exactly as `callmon replay --fast` would, writing it to the archive itself through an
`ArchiveSink`; only a small `Outcome` comes back through the pipe. A call is complete only at
`call.ended`, so a batch killed part-way is finished by running the same command again.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import multiprocessing
import os
import signal
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ..errors import BadInput
from ..vocab import mmss as _duration
from .archive import connect, delete_call, find_by_hash, transaction

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
BAR = 16  # characters of the progress bar


@dataclass(frozen=True)
class Job:
    """One file to ingest, as sent to a worker (small: it goes through a pipe)."""

    path: str  # as the user named it (for messages)
    source: str  # the absolute path (stored with the call)
    content_hash: str
    audio_s: float | None
    agent_id: str
    call_date: datetime


@dataclass(frozen=True)
class Outcome:
    """What a worker reports for one file: `status` is ingested, bad (unusable input) or error."""

    path: str
    status: str
    audio_s: float = 0.0
    call_id: str | None = None
    message: str = ""
    fatal: bool = False  # the worker itself could not start (model, config): stop the batch


@dataclass
class Summary:
    """The batch's result, for the final lines and the exit code."""

    total: int = 0
    ingested: list[Outcome] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
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
# the worker side


_worker: dict[str, Any] = {}


def _init_worker(db: str, config_path: str | None, overrides: dict[str, Any]) -> None:
    """Runs once per worker process: load the config, the model and the hostility scorer."""
    # Ctrl-C goes to the parent, which stops the workers; a worker must not die half-way on its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        from ..config import load_config
        from ..session import load_scorer
        from ..stt.model import WhisperTranscriber

        cfg = load_config(config_path, overrides)
        _worker.update(db=db, cfg=cfg, transcriber=WhisperTranscriber(cfg.stt), scorer=load_scorer(cfg))
    except Exception as exc:  # noqa: BLE001 - reported with the first job, in one line
        _worker.update(init_error=exc)


def _ingest_one(job: Job) -> Outcome:
    """Replay one file into the archive (in a worker process)."""
    if "init_error" in _worker:
        exc = _worker["init_error"]
        status = "bad" if isinstance(exc, BadInput) else "error"
        return Outcome(job.path, status, message=_one_line(exc), fatal=True)
    from ..pipeline import PipelineError
    from ..session import CallSession, open_file
    from .archive import ArchiveSink

    cfg = _worker["cfg"]
    try:
        source, roles = open_file(job.path, cfg)
    except BadInput as exc:
        return Outcome(job.path, "bad", message=_one_line(exc))
    sink = ArchiveSink(
        _worker["db"], source_path=job.source, content_hash=job.content_hash, agent_id=job.agent_id, call_date=job.call_date,
    )
    session = CallSession(
        cfg, source, roles, [sink], partials=False, source_name=source.description,
        transcriber=_worker["transcriber"], scorer=_worker["scorer"],
    )
    try:
        ended = session.run()
    except PipelineError as exc:
        _discard(sink.call_id)
        return Outcome(job.path, "error", message=_one_line(exc))
    except Exception as exc:  # noqa: BLE001 - one file's failure must not end the batch
        _discard(sink.call_id)
        return Outcome(job.path, "error", message=f"{type(exc).__name__}: {_one_line(exc)}")
    if ended.error:
        # A damaged file: the archive keeps whole calls only, so QA never scores half a call as if it were all.
        _discard(sink.call_id)
        return Outcome(job.path, "bad", audio_s=ended.duration, message=ended.error)
    if sink.error or not sink.completed:
        _discard(sink.call_id)
        return Outcome(job.path, "error", message=sink.error or "the call did not reach its end")
    return Outcome(job.path, "ingested", audio_s=ended.duration, call_id=ended.call_id)


def _discard(call_id: str | None) -> None:
    if call_id is None:
        return
    conn = connect(_worker["db"], create=True)
    try:
        with transaction(conn):
            delete_call(conn, call_id)
    finally:
        conn.close()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# ---------------------------------------------------------------------------------------------
# the parent side


@dataclass
class BatchOptions:
    """What the user asked for."""

    db: Path
    paths: list[str]
    workers: int | None = None
    agent_id: str | None = None
    call_date: datetime | None = None
    config_path: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    quiet: bool = False


def plan(opts: BatchOptions, default_agent: str) -> tuple[list[Job], Summary]:
    """Hash every file; those already archived (or repeated in this batch) are skipped."""
    files = collect(opts.paths)
    summary = Summary(total=len(files))
    jobs: list[Job] = []
    conn = connect(opts.db, create=True)
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
                jobs.append(Job(str(path), str(path.resolve()), digest, probe_duration(path), opts.agent_id or default_agent,
                                opts.call_date or file_date(path)))
    except sqlite3.Error as exc:
        raise BadInput(f"cannot read the archive {opts.db} ({exc})") from None
    finally:
        conn.close()
    return jobs, summary


class ProgressLine:
    """Progress on stderr: a live line on a terminal, else a line per file."""

    def __init__(self, err: TextIO, total: int, audio_total_s: float, quiet: bool) -> None:
        self.err = err
        self.total = total
        self.audio_total_s = audio_total_s  # as the files' headers claim: for the ETA
        self.live = err.isatty() and not quiet
        self.quiet = quiet
        self.done = 0
        self.audio_done_s = 0.0  # audio of the calls ingested
        self.audio_settled_s = 0.0  # header durations of the files finished either way
        self.t0 = time.monotonic()

    def finished(self, claimed_s: float | None, ingested_s: float) -> None:
        """One file is done (ingested or failed)."""
        self.done += 1
        self.audio_done_s += ingested_s
        self.audio_settled_s += claimed_s if claimed_s is not None else ingested_s

    def note(self, text: str, always: bool = False) -> None:
        """A line about one file (on a terminal, only failures, printed above the live line)."""
        if self.quiet or (self.live and not always):
            return
        prefix = "\r\033[K" if self.live else ""
        self.err.write(f"{prefix}[{self.done}/{self.total}] {text}\n")
        self.redraw()

    def redraw(self) -> None:
        """The live line: files, audio done, speed and ETA."""
        if not self.live:
            self.err.flush()
            return
        elapsed = time.monotonic() - self.t0
        speed = self.audio_done_s / elapsed if elapsed > 0 else 0.0
        left = max(0.0, self.audio_total_s - self.audio_settled_s)
        eta = _duration(left / speed) if speed else "..."
        share = self.audio_settled_s / self.audio_total_s if self.audio_total_s else self.done / max(1, self.total)
        filled = int(round(BAR * min(1.0, share)))
        # Under 80 columns, so the terminal never wraps it (a wrapped line cannot be redrawn in place).
        line = (
            f"ingest [{'#' * filled}{'.' * (BAR - filled)}] {self.done}/{self.total} files, "
            f"{self.audio_done_s / 3600:.2f} h of audio, {speed:.1f}x, ETA {eta}"
        )
        self.err.write("\r" + line + "\033[K")
        self.err.flush()

    def finish(self) -> None:
        """End the live line."""
        if self.live:
            self.err.write("\r\033[K")
            self.err.flush()


def _worker_threads(cfg_threads: int, workers: int) -> int:
    """Model threads per worker: the cores shared out, so workers do not fight over them."""
    if cfg_threads:
        return cfg_threads
    return max(1, (os.cpu_count() or 1) // workers)


def run_batch(opts: BatchOptions, default_agent: str, stt_threads: int, err: TextIO = sys.stderr) -> Summary:
    """Ingest the files; returns the summary (also printed)."""
    jobs, summary = plan(opts, default_agent)
    progress = ProgressLine(err, summary.total, sum(j.audio_s or 0.0 for j in jobs), opts.quiet)
    for path, why in summary.skipped:  # settled before any worker starts
        progress.done += 1
        progress.note(f"skipped {path} ({why})")
    for o in summary.failed:
        progress.done += 1
        progress.note(_failure(o), always=True)
    try:
        if jobs:
            _run_pool(opts, jobs, summary, progress, stt_threads)
    finally:
        progress.finish()
    _print_summary(summary, err, time.monotonic() - progress.t0)
    return summary


def _run_pool(opts: BatchOptions, jobs: list[Job], summary: Summary, progress: ProgressLine, stt_threads: int) -> None:
    workers = max(1, min(opts.workers or os.cpu_count() or 1, len(jobs)))
    overrides = {**opts.overrides, "stt.threads": _worker_threads(stt_threads, workers)}
    ctx = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                  initargs=(str(opts.db), opts.config_path, overrides))
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops the batch like Ctrl-C
    try:
        pending = {pool.submit(_ingest_one, job): job for job in jobs}
        progress.redraw()
        while pending:
            done, _ = cf.wait(pending, timeout=1.0, return_when=cf.FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                outcome = _result(future, job)
                if outcome.fatal:
                    raise _fatal(outcome)
                _record(outcome, job, summary, progress)
            progress.redraw()
    except KeyboardInterrupt:
        summary.interrupted = True
        _stop_workers(pool)
    except BaseException:
        _stop_workers(pool)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        pool.shutdown(wait=True, cancel_futures=True)


def _result(future: cf.Future, job: Job) -> Outcome:
    try:
        return future.result()
    except cf.process.BrokenProcessPool:
        return Outcome(job.path, "error", message="a worker process died (out of memory?)", fatal=True)
    except Exception as exc:  # noqa: BLE001 - a worker bug: report it against its file, go on
        return Outcome(job.path, "error", message=f"{type(exc).__name__}: {_one_line(exc)}")


def _fatal(outcome: Outcome) -> Exception:
    from ..pipeline import PipelineError

    if outcome.status == "bad":
        return BadInput(outcome.message)
    return PipelineError(outcome.message)


def _record(outcome: Outcome, job: Job, summary: Summary, progress: ProgressLine) -> None:
    progress.finished(job.audio_s, outcome.audio_s if outcome.status == "ingested" else 0.0)
    name = outcome.path
    if outcome.status == "ingested":
        summary.ingested.append(outcome)
        progress.note(f"ingested {name} ({_duration(outcome.audio_s)} of audio) as {outcome.call_id}")
    else:
        summary.failed.append(outcome)
        progress.note(_failure(outcome), always=True)


def _failure(o: Outcome) -> str:
    """One line for a failed file; the file is named once (most messages name it already)."""
    return f"failed: {o.message}" if o.path in o.message else f"failed: {o.path}: {o.message}"


def _stop_workers(pool: cf.ProcessPoolExecutor) -> None:
    """End the workers now: a call cut off stays `partial` and the next run redoes it."""
    # The executor has no public way to stop running tasks; its process table is the only handle.
    for proc in list(getattr(pool, "_processes", {}).values()):
        if proc.is_alive():
            proc.terminate()


def _print_summary(summary: Summary, err: TextIO, elapsed: float) -> None:
    audio = sum(o.audio_s for o in summary.ingested)
    head = "interrupted: " if summary.interrupted else ""
    err.write(
        f"{head}ingested {len(summary.ingested)} call(s) ({audio / 3600:.2f} h of audio) in {_duration(elapsed)}, "
        f"skipped {len(summary.skipped)} already archived, failed {len(summary.failed)}\n"
    )
    for o in summary.failed:
        err.write(f"  {_failure(o)}\n")
    if summary.interrupted:
        err.write("  run the same command again to ingest the rest (finished calls are kept)\n")
    err.flush()
