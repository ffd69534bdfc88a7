"""The Dask side of QA ingest: the cluster, the per-worker model, and one call replayed on a worker.

`open_client` starts the embedded default, a `LocalCluster` of worker processes on loopback, or
connects to an existing scheduler. `ModelPlugin` is registered on every worker: it holds the
config and loads the model and the hostility scorer once per worker, on the first call (in the
task's thread, so the worker's event loop never blocks on it). `replay_call` runs one recording
through `CallSession`, exactly as `callmon replay --fast` would, and returns the call's archive
statements, redacted, to the driver, which alone writes the archive. While a call runs, the
worker reports how far it has got (call seconds) on a Dask event topic, for the driver's progress.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import dask
from distributed import Client, LocalCluster, WorkerPlugin, get_worker

from ..config import Config
from ..errors import BadInput
from .rows import CallRows, Statement

PLUGIN = "callmon-model"
PROGRESS_EVERY_S = 1.0  # wall seconds between a worker's progress events


@dataclass(frozen=True)
class Job:
    """One recording to replay (small: it is sent to a worker)."""

    path: str  # as the user named it (for messages)
    source: str  # the absolute path: every worker must see the file there
    content_hash: str
    audio_s: float | None  # as the header claims, for progress
    agent_id: str
    call_date: datetime


@dataclass(frozen=True)
class Outcome:
    """What a worker returns for one recording: `status` is ingested, bad (unusable input) or error."""

    path: str
    status: str
    audio_s: float = 0.0
    call_id: str | None = None
    message: str = ""
    fatal: bool = False  # the worker could not load the model or config: stop the batch
    statements: list[Statement] = field(default_factory=list, repr=False)
    notes: list[str] = field(default_factory=list)  # what opening the file had to say (mono, split...)


class ModelPlugin(WorkerPlugin):
    """Per worker: the config, and the model and scorer loaded once, on the first call."""

    idempotent = True  # a worker joining later gets it; registering again changes nothing

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"cfg": self.cfg}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["cfg"])

    def setup(self, worker: Any) -> None:
        """Nothing heavy here: the worker's event loop runs this."""

    def models(self) -> tuple[Any, Any]:
        """(transcriber, scorer), loaded on first use; a load failure is raised to every call."""
        with self._lock:
            if self._loaded is None:
                from ..session import load_scorer
                from ..stt.model import WhisperTranscriber

                self._loaded = (WhisperTranscriber(self.cfg.stt), load_scorer(self.cfg))
            return self._loaded


class _Progress:
    """A sink that tells the driver how far the call has got, about once a second."""

    def __init__(self, topic: str, content_hash: str) -> None:
        self.topic = topic
        self.content_hash = content_hash
        self.worker = get_worker()
        self.last = 0.0

    def __call__(self, event: Any) -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            self.worker.log_event(self.topic, {"hash": self.content_hash, "t": event.t})


def replay_call(job: Job, topic: str) -> Outcome:
    """Replay one recording on this worker; the call's statements come back with the outcome."""
    from ..pipeline import PipelineError
    from ..redact import redact_event
    from ..session import CallSession, open_file

    plugin = get_worker().plugins[PLUGIN]
    try:
        transcriber, scorer = plugin.models()
    except Exception as exc:  # noqa: BLE001 - reported once, in one line, and the batch stops
        return Outcome(job.path, "bad" if isinstance(exc, BadInput) else "error", message=one_line(exc), fatal=True)
    cfg = plugin.cfg
    if not os.path.exists(job.source):
        return Outcome(job.path, "bad", message=f"{job.source} is not on worker {get_worker().address} (workers need the files "
                                                 "at the same path)")
    notes: list[str] = []
    try:
        source, roles = open_file(job.source, cfg, transcriber=transcriber, notify=notes.append)
    except BadInput as exc:
        return Outcome(job.path, "bad", message=one_line(exc), notes=notes)
    rows = CallRows(source_path=job.source, content_hash=job.content_hash, agent_id=job.agent_id, call_date=job.call_date)

    def collect(event: Any) -> None:
        rows.take(redact_event(event))  # redacted here: the transcript leaves this process only redacted

    session = CallSession(
        cfg, source, roles, [collect, _Progress(topic, job.content_hash)], partials=False,
        source_name=source.description, transcriber=transcriber, scorer=scorer,
    )
    try:
        ended = session.run()
    except PipelineError as exc:
        return Outcome(job.path, "error", message=one_line(exc), notes=notes)
    except Exception as exc:  # noqa: BLE001 - one file's failure must not end the batch
        return Outcome(job.path, "error", message=f"{type(exc).__name__}: {one_line(exc)}", notes=notes)
    if ended.error:
        # A damaged file: the archive keeps whole calls only, so QA never scores half a call as if it were all.
        return Outcome(job.path, "bad", audio_s=ended.duration, message=ended.error, notes=notes)
    if not rows.completed:
        return Outcome(job.path, "error", message="the call did not reach its end", notes=notes)
    return Outcome(job.path, "ingested", audio_s=ended.duration, call_id=ended.call_id, statements=rows.drain(),
                   notes=notes)


def one_line(exc: BaseException) -> str:
    """An exception's message on one line."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


@contextmanager
def open_client(cfg: Config, scheduler: str | None, workers: int, verbose: bool = False) -> Iterator[Client]:
    """A client with the model plugin on every worker: a LocalCluster of `workers` processes, or `scheduler`'s cluster."""
    if not verbose:
        for name in ("distributed", "tornado"):  # their INFO lines are not the user's business; -v shows them
            logging.getLogger(name).setLevel(logging.ERROR)
    if scheduler:
        try:
            client = Client(scheduler, timeout=cfg.qa.connect_timeout_s)
        except (OSError, TimeoutError) as exc:
            raise BadInput(f"cannot reach the Dask scheduler at {scheduler} ({one_line(exc)}); is `dask scheduler` running "
                           "there and the address tcp://HOST:PORT?") from None
        cluster = None
        try:
            client.wait_for_workers(1, timeout=cfg.qa.connect_timeout_s)
        except TimeoutError:
            client.close()
            raise BadInput(f"the Dask cluster at {scheduler} has no workers; start some with `dask worker {scheduler}`") from None
    else:
        # One call at a time per worker process; the cores are shared out so workers do not fight over them.
        threads = cfg.stt.threads or max(1, (os.cpu_count() or 1) // workers)
        cfg = replace(cfg, stt=replace(cfg.stt, threads=threads))
        dask.config.set({
            # Dask's worker environment is made for one small task per core: OpenMP and MKL capped at one
            # thread, and glibc told to give memory back at every 64 kB (MALLOC_TRIM_THRESHOLD_), which makes a
            # model's large, short-lived buffers page-fault over and over. A worker here runs one call at a time
            # whose model takes its share of the cores: its threads get that share, and malloc keeps its default.
            "distributed.nanny.pre-spawn-environ": {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads},
            # The statistical profiler samples every thread's stack every 10 ms: a tax on a pipeline of Python threads.
            "distributed.worker.profile.enabled": False,
        })
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
            # No dashboard; the scheduler's small HTTP server (health checks) on a free port, so two ingests never clash.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.DEBUG if verbose else logging.ERROR,
        )
        client = Client(cluster)
    try:
        client.register_plugin(ModelPlugin(cfg), name=PLUGIN)
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def worker_slots(client: Client) -> int:
    """How many calls the cluster replays at once (threads over all workers); at least 1."""
    info = client.scheduler_info()
    return max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))
