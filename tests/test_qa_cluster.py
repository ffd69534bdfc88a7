"""QA ingest on a real Dask cluster, and an archive that cannot be used or is shared.

* an existing cluster: `dask scheduler` and `dask worker` started as separate processes on
  loopback, `callmon qa ingest --scheduler tcp://...` stores the call (the driver writes the archive);
* two ingests of the same files into one archive at the same time: each recording is replayed and
  stored once, the second run says it left files to the other, and nothing is left behind;
* a read-only archive, and one locked by another writer: one line, exit 2, before any worker starts;
* `callmon redact | head -1`: a reader that goes away is quiet (exit 0); a broken pipe that is not
  stdout is an error (exit 1, one line).

The LocalCluster path (2 worker processes) and kill -9 are in test_qa.py.
"""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import FIXTURES, REPO_ROOT, callmon
from test_qa import exported, one_error_line, orphans

from monitor.cli import main
from monitor.qa.archive import connect

CALLS = FIXTURES / "calls"
DASK = shutil.which("dask", path=os.path.dirname(sys.executable))


def started(cmd, stderr=subprocess.PIPE):
    return subprocess.Popen(cmd, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, text=True)


@pytest.mark.slow
def test_ingest_on_a_scheduler_and_worker_started_separately(tmp_path):
    assert DASK, "the dask command comes with dask[distributed]"
    info = tmp_path / "scheduler.json"
    scheduler = started([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                         "--scheduler-file", str(info)], stderr=subprocess.DEVNULL)
    worker = None
    try:
        deadline = time.monotonic() + 120
        while not info.exists() and time.monotonic() < deadline and scheduler.poll() is None:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        worker = started([DASK, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                          "--host", "127.0.0.1"], stderr=subprocess.DEVNULL)
        db = tmp_path / "archive.sqlite"
        result = callmon("qa", "ingest", CALLS / "short.flac", "--db", db, "--scheduler", address, timeout=300)
        assert result.returncode == 0, result.stderr
        assert f"on the cluster at {address}" in result.stderr and "ingested 1 call(s)" in result.stderr, result.stderr
        (row,) = exported(db)
        assert row["source"].endswith("/short.flac") and float(row["duration_s"]) > 15
        assert worker.poll() is None, "the cluster's worker stays up for the next batch"
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=60)


@pytest.mark.slow
def test_two_ingests_at_once_store_each_recording_once(tmp_path):
    files = [str(CALLS / f"{n}.flac") for n in ("short", "scn_calm_address_change")]
    db = tmp_path / "archive.sqlite"
    cmd = [sys.executable, "-m", "monitor", "qa", "ingest", *files, "--db", str(db), "--workers", "1"]
    runs = [started(cmd), started(cmd)]
    errs = [proc.communicate(timeout=400)[1] for proc in runs]
    for proc, err in zip(runs, errs, strict=True):
        assert proc.returncode == 0, err
    ingested = [int(re.search(r"ingested (\d+) call\(s\)", err).group(1)) for err in errs]
    assert sum(ingested) == len(files), f"each recording replayed once in all:\n{errs[0]}\n{errs[1]}"
    for err, n in zip(errs, ingested, strict=True):
        if n < len(files):  # the rest was the other run's: it says so, or found it archived
            assert "being ingested by another run" in err or "already archived" in err, err
    assert sorted(r["source"] for r in exported(db)) == sorted(files)
    assert orphans(db) == 0


def test_read_only_archive_fails_before_any_work(tmp_path):
    db = tmp_path / "ro" / "archive.sqlite"
    db.parent.mkdir()
    connect(db, create=True).close()  # an archive made earlier
    main_args = ["qa", "ingest", str(CALLS / "short.flac"), "--db", str(db), "--workers", "1"]
    if os.geteuid() != 0:
        db.chmod(0o444)
        db.parent.chmod(0o555)
        cmd = [sys.executable, "-m", "monitor", *main_args]
    else:  # root writes any file: mount the folder read-only in a mount namespace of its own
        if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
            pytest.skip("running as root without unshare -m: cannot make a read-only archive")
        inner = " ".join(f"'{a}'" for a in [sys.executable, "-m", "monitor", *main_args])
        cmd = ["unshare", "-m", "sh", "-c", f"mount --bind -o ro '{db.parent}' '{db.parent}' && exec {inner}"]
    try:
        result = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    finally:
        db.parent.chmod(0o755)
    line = one_error_line(result)
    assert "read-only" in line and str(db) in line, line


def test_locked_archive_says_so(tmp_path):
    db = tmp_path / "archive.sqlite"
    config = tmp_path / "quick.toml"
    config.write_text("[qa]\nlock_wait_s = 0.5\n")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another writer, mid-transaction, on a fresh archive
    try:
        result = callmon("qa", "ingest", CALLS / "short.flac", "--db", db, "--config", config, timeout=120)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    line = one_error_line(result)
    assert "is locked by another process" in line and "run again when it is done" in line, line


def test_a_reader_that_goes_away_is_quiet():
    lines = "".join(f"call me on 555 123 {i:04d} please\n" for i in range(200_000))
    result = subprocess.run(
        f"'{sys.executable}' -m monitor redact | head -1", shell=True, input=lines, capture_output=True, text=True,
        cwd=REPO_ROOT, timeout=120,
    )
    assert result.stdout == "call me on [phone] please\n"
    assert result.stderr == "", result.stderr


def test_a_broken_pipe_that_is_not_stdout_is_an_error(monkeypatch, capsys):
    def fake_batch(opts, cfg, err=None):  # a fake: a worker's pipe breaking is hard to provoke on purpose
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("monitor.qa.ingest.run_batch", fake_batch)
    code = main(["qa", "ingest", str(CALLS / "short.flac"), "--db", "/nonexistent-dir-for-test/a.sqlite"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.startswith("callmon: error: ") and "Broken pipe" in err and len(err.splitlines()) == 1
