"""`callmon qa`: recorded calls into the archive and back out, through the real pipeline and real SQLite.

One batch is ingested per test session (`archive`, 2 workers): three fixture calls plus two bad
files (random bytes named x.wav, a flac cut short). Everything that reads the archive works on it:

* the batch: the good calls go in, the bad ones are reported one line each and skipped, exit 2;
  a second ingest (one call under a new name) skips everything by content;
* kill -9 of the ingest part-way through a batch (1 worker): no worker outlives it, and the rerun
  ingests the rest with nothing twice and no orphan rows (its own small archive);
* search finds a phrase the customer says (from the manifest's turns), at the right call time;
* scorecards (via `qa export --csv`, one row per call) agree with the manifests: every expected
  nudge kind is there, no forbidden one, the duration within 0.5 s;
* `qa list` filters, `qa show` (scorecard and timeline in 80 columns);
* `qa report`: the HTML embeds a PNG plot that is not blank; the summary report too;
* redaction: a card number fed to the ArchiveSink cannot be found; a live call cut off keeps what was
  committed;
* bad input: a missing archive, an unknown call, a missing path, a folder without audio: one line, exit 2.
"""

import base64
import csv
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout

import pytest
from conftest import FIXTURES, REPO_ROOT, callmon

from monitor.cli import main
from monitor.events import CallEnded, CallStarted, Metrics, RoleMetrics, TranscriptFinal, Word
from monitor.qa.archive import ArchiveSink

CALLS = FIXTURES / "calls"
GOOD = ["scn_sb_insult_useless", "scn_cs_legal_solicitor", "short"]
AGENT = "qa-test-agent"
DAY = "2026-11-20"


def manifest(name):
    return json.loads((CALLS / f"{name}.json").read_text(encoding="utf-8"))


def one_error_line(result):
    """The bad-input standard: exit 2, one `callmon: error:` line, no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, f"exit {result.returncode}:\n{result.stderr}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("callmon: error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="session")
def archive(tmp_path_factory):
    """One batch ingested with 2 workers: (archive path, the CompletedProcess, the bad files)."""
    root = tmp_path_factory.mktemp("qa")
    bad_wav = root / "x.wav"
    bad_wav.write_bytes(os.urandom(8192))
    cut = root / "cut.flac"
    cut.write_bytes((CALLS / "scn_calm_password_reset.flac").read_bytes()[:60_000])  # header says 24 s
    db = root / "archive.sqlite"
    result = callmon(
        "qa", "ingest", *[CALLS / f"{n}.flac" for n in GOOD], bad_wav, cut,
        "--db", db, "--workers", "2", "--agent", AGENT, "--date", DAY, timeout=600,
    )
    return db, result, (bad_wav, cut)


def qa(db, *args):
    """`callmon qa ARGS --db DB` run in this process (the same `main` as the console script, without
    a new interpreter's start-up); ingest and the one-line error checks run as real subprocesses."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["qa", *map(str, args), "--db", str(db)])
    return subprocess.CompletedProcess(["callmon", "qa", *args], code, out.getvalue(), err.getvalue())


def exported(db):
    result = qa(db, "export", "--csv")
    assert result.returncode == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


def call_id_of(db, name):
    for row in exported(db):
        if row["source"].endswith(f"/{name}.flac"):
            return row["call_id"]
    raise AssertionError(f"{name} is not in the archive")


# --- ingest ------------------------------------------------------------------------------------


def test_batch_ingests_good_calls_and_reports_bad_files(archive):
    db, result, (bad_wav, cut) = archive
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, f"a bad file in the batch means exit 2 at the end:\n{result.stderr}"
    failures = [line for line in result.stderr.splitlines() if line.startswith("  failed: ")]
    assert len(failures) == 2, result.stderr
    assert any(str(bad_wav) in line for line in failures) and any(str(cut) in line for line in failures)
    assert "ingested 3 call(s)" in result.stderr
    rows = exported(db)
    assert sorted(r["source"].rsplit("/", 1)[-1] for r in rows) == sorted(f"{n}.flac" for n in GOOD)
    assert {r["agent_id"] for r in rows} == {AGENT} and {r["call_date"][:10] for r in rows} == {DAY}


def test_second_ingest_skips_what_is_archived_even_renamed(archive, tmp_path):
    db, _, _ = archive
    renamed = tmp_path / "renamed-copy.flac"
    renamed.write_bytes((CALLS / "short.flac").read_bytes())
    before = exported(db)
    result = callmon("qa", "ingest", *[CALLS / f"{n}.flac" for n in GOOD], renamed, "--db", db, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "ingested 0 call(s)" in result.stderr and "skipped 4" in result.stderr, result.stderr
    assert f"skipped {renamed} (already archived as " in result.stderr
    assert [r["call_id"] for r in exported(db)] == [r["call_id"] for r in before]


def test_kill_9_leaves_no_worker_and_the_rerun_stores_each_call_once(tmp_path):
    """kill -9 of the ingest alone (not its process group): its Dask workers die with it, and the
    rerun ingests the rest with no call twice and no rows without a call."""
    names = ["short", "scn_calm_password_reset", "scn_calm_delivery_date"]
    files = [str(CALLS / f"{n}.flac") for n in names]
    db = tmp_path / "archive.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "qa", "ingest", *files, "--db", str(db), "--workers", "1", "-q"],
        cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # its session id finds its workers after it is gone
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if completed(db) >= 1:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the batch finished before it could be killed"
        assert completed(db) >= 1, "no call was completed within 300 s"
        assert len(session_processes(proc.pid)) >= 2, "the ingest should have started a worker process"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 60
        while session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert session_processes(proc.pid) == [], "a worker outlived the killed ingest"
    finally:
        for pid in session_processes(proc.pid):
            os.kill(pid, signal.SIGKILL)
    first = completed_sources(db)
    assert len(first) < len(names), "the kill came after the whole batch"

    result = callmon("qa", "ingest", *files, "--db", db, "--workers", "1", timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"skipped {len(first)} already archived" in result.stderr, result.stderr
    rows = exported(db)
    assert sorted(r["source"] for r in rows) == sorted(files), "each file exactly once"
    assert orphans(db) == 0


def session_processes(sid):
    """Live processes in session `sid` (zombies are dead)."""
    import psutil

    out = []
    for p in psutil.process_iter(["pid", "status"]):
        try:
            if os.getsid(p.info["pid"]) == sid and p.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(p.info["pid"])
        except (ProcessLookupError, PermissionError):
            continue
    return out


def orphans(db):
    """Rows that belong to no complete call, claims left behind, and calls stored twice."""
    with sqlite3.connect(db) as conn:
        count = conn.execute("SELECT count(*) FROM calls WHERE status != 'complete'").fetchone()[0]
        for table in ("segments", "metrics", "nudges", "marks"):
            count += conn.execute(f"SELECT count(*) FROM {table} WHERE call_id NOT IN (SELECT call_id FROM calls)").fetchone()[0]
        # The search index agrees with the segments (raises "database disk image is malformed" otherwise).
        conn.execute("INSERT INTO segments_fts (segments_fts) VALUES ('integrity-check')")
        count += conn.execute("SELECT count(*) FROM claims").fetchone()[0]
        count += conn.execute("SELECT count(*) - count(DISTINCT content_hash) FROM calls").fetchone()[0]
    return count


def completed(db):
    return len(completed_sources(db))


def completed_sources(db):
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return [r[0] for r in conn.execute("SELECT source FROM calls WHERE status = 'complete'")]
    except sqlite3.OperationalError:  # the schema is being created
        return []


# --- reading the archive -----------------------------------------------------------------------


def test_search_finds_a_phrase_from_the_manifest(archive):
    db, _, _ = archive
    turn = next(t for t in manifest("scn_sb_insult_useless")["turns"] if "completely useless" in t["text"])
    result = qa(db, "search", "completely useless")
    assert result.returncode == 0, result.stderr
    # The marked words are what tiny.en wrote: the phrase itself or a near-miss of it ("complete useless").
    hits = [line for line in result.stdout.splitlines() if re.search(r"«complete\w* useless»", line)]
    assert len(hits) == 1, result.stdout
    call_id, clock, role = hits[0].split()[:3]
    assert call_id == call_id_of(db, "scn_sb_insult_useless") and role == turn["role"]
    minutes, seconds = map(int, clock.split(":"))
    assert abs(minutes * 60 + seconds - turn["start"]) <= 2.0, f"{clock} vs the turn at {turn['start']} s"
    nothing = qa(db, "search", "zebra crossing")
    assert nothing.returncode == 0 and nothing.stdout.strip() == "0 match(es)"


@pytest.mark.parametrize("name", GOOD)
def test_scorecards_agree_with_manifests(archive, name):
    db, _, _ = archive
    m = manifest(name)
    (row,) = [r for r in exported(db) if r["source"].endswith(f"/{name}.flac")]
    assert abs(float(row["duration_s"]) - m["duration"]) <= 0.5
    for kind in {e["kind"] for e in m["expect_nudges"]}:
        assert int(row[f"nudges_{kind}"]) >= 1, f"{name}: expected a {kind} nudge on the scorecard"
    for kind in m["forbid_nudges"]:
        assert int(row[f"nudges_{kind}"]) == 0, f"{name}: {kind} is forbidden in this call"
    assert int(row["nudges"]) == sum(int(row[k]) for k in row if k.startswith("nudges_") and k != "nudges_followed"
                                     and k != "nudges_dismissed")


def test_export_csv_has_a_header_and_one_row_per_call(archive, tmp_path):
    db, _, _ = archive
    out = tmp_path / "calls.csv"
    result = qa(db, "export", "--csv", out)
    assert result.returncode == 0, result.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("call_id,call_date,agent_id,source,")
    for column in ("talk_ratio", "silence_share", "peak_heat", "followed_rate", "heat_before_trigger", "heat_after_move",
                   "heat_q1", "talk_silence_s", "nudges_set_boundary"):
        assert column in lines[0].split(",")
    assert len(lines) == 1 + len(GOOD)


def test_list_filters(archive):
    db, _, _ = archive

    def ids(*args):
        result = qa(db, "list", *args)
        assert result.returncode == 0, result.stderr
        return {line.split()[0] for line in result.stdout.splitlines() if line.startswith("c-")}

    everything = ids()
    assert len(everything) == len(GOOD)
    assert ids("--kind", "set_boundary") == {call_id_of(db, "scn_sb_insult_useless")}
    assert call_id_of(db, "short") not in ids("--min-heat", "1")
    assert ids("--since", DAY, "--until", DAY, "--agent", AGENT) == everything
    assert ids("--until", "2026-11-19") == set() and ids("--agent", "someone-else") == set()


def test_show_prints_scorecard_and_timeline_in_80_columns(archive):
    db, _, _ = archive
    call_id = call_id_of(db, "scn_sb_insult_useless")
    others = [r["call_id"] for r in exported(db) if r["call_id"] != call_id]
    prefix = next(call_id[:n] for n in range(3, 11) if not any(o.startswith(call_id[:n]) for o in others))
    result = qa(db, "show", prefix)  # the start of an id is enough when it is unique
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert call_id in text and ">>> set_boundary" in text
    for label in ("duration", "talk ratio", "pace", "heat", "nudges", "followed", "timeline", "call ended"):
        assert label in text, f"{label!r} missing from qa show"
    assert max(len(line) for line in text.splitlines()) <= 80


def test_report_embeds_a_plot_that_is_not_blank(archive, tmp_path):
    db, _, _ = archive
    call_id = call_id_of(db, "scn_sb_insult_useless")
    out = tmp_path / "call.html"
    result = callmon("qa", "report", call_id, "--html", out, "--db", db)
    assert result.returncode == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    assert "set_boundary" in page and "useless" in page and 'class="seg customer' in page
    assert_plot_not_blank(page)
    assert "<pre" not in page and "<th>figure</th>" in page, "the scorecard is a table"
    assert 'class="legend"' in page and "said while the call was heated" in page
    for heading in ("Heat and customer sentiment per quarter", "Talk, silence, overlap and interruptions",
                    "Nudges: what the agent did, and did it help"):
        assert heading in page
    assert '<audio id="player"' in page and page.count("data-t=") >= 5, "times jump the player"


def test_report_audio_bleeps_what_redaction_removed(archive, tmp_path):
    """The customer reads out an account number ("M L four four eight two"): the transcript says [digits],
    and the report's recording plays a 1 kHz tone over that span instead of the voice."""
    import numpy as np

    from monitor.qa.audio import BLEEP_HZ, PAD_S, RATE, decode

    db, _, _ = archive
    call_id = call_id_of(db, "scn_cs_legal_solicitor")
    with sqlite3.connect(db) as conn:
        words = [json.loads(r[0]) for r in conn.execute("SELECT words FROM segments WHERE call_id = ?", (call_id,))]
    spans = [(w["start"], w["end"]) for ws in words for w in ws if "[digits]" in w["w"]]
    assert spans, "the account number read out is redacted in the archive"
    out = tmp_path / "call.html"
    result = qa(db, "report", call_id, "--html", out)
    assert result.returncode == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    assert f"{len(spans)} redacted span(s) bleeped" in page
    mp3 = tmp_path / "call.mp3"
    mp3.write_bytes(base64.b64decode(re.search(r'src="data:audio/mpeg;base64,([A-Za-z0-9+/=]+)"', page).group(1)))
    audio = decode(mp3).mean(axis=0)
    original = decode(CALLS / "scn_cs_legal_solicitor.flac").mean(axis=0)
    for start, end in spans:
        inside = audio[int((start + PAD_S) * RATE):int((end - PAD_S) * RATE)]
        assert len(inside) > RATE // 10
        spectrum = np.abs(np.fft.rfft(inside))
        assert abs(np.argmax(spectrum) * RATE / len(inside) - BLEEP_HZ) < 20, "the span is the tone"
        said = original[int((start + PAD_S) * RATE):int((end - PAD_S) * RATE)]
        voice = np.abs(np.fft.rfft(said))
        assert abs(np.argmax(voice) * RATE / len(said) - BLEEP_HZ) >= 20, "(the voice there was not a 1 kHz tone)"


def test_summary_has_trends_per_agent_and_week_and_links_each_call(archive, tmp_path):
    db, _, _ = archive
    summary = tmp_path / "summary.html"
    result = qa(db, "report", "--summary", "--calls", "--html", summary)
    assert result.returncode == 0, result.stderr
    page = summary.read_text(encoding="utf-8")
    assert_plot_not_blank(page)
    assert "<h2>Per agent</h2>" in page and "<h2>Per week</h2>" in page
    assert f"<td class=\"nw\">{AGENT}</td>" in page and "2026-W47 (from 2026-11-16)" in page
    for name in GOOD:
        call_id = call_id_of(db, name)
        assert f'<a href="{call_id}.html"><code>{call_id}</code></a>' in page
        assert (tmp_path / f"{call_id}.html").is_file(), "--calls writes each call's report where the summary links"
    assert "td.nw, code { white-space: nowrap; }" in page


def test_search_survives_what_tiny_en_misheard(archive):
    """The agent says "Lumen Home Loans" (the manifest); whatever tiny.en wrote, "loans" finds that call."""
    db, _, _ = archive
    assert "Home Loans" in manifest("scn_cs_legal_solicitor")["turns"][0]["text"]
    result = qa(db, "search", "loans")
    assert result.returncode == 0, result.stderr
    assert call_id_of(db, "scn_cs_legal_solicitor") in result.stdout


def assert_plot_not_blank(page):
    import matplotlib.image
    import numpy as np

    match = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert match, "no embedded PNG"
    pixels = matplotlib.image.imread(io.BytesIO(base64.b64decode(match.group(1))), format="png")
    assert pixels.shape[0] > 200 and pixels.shape[1] > 400
    flat = pixels.reshape(-1, pixels.shape[-1])
    assert len(np.unique(flat, axis=0)) > 10, "the plot is (nearly) one colour"


# --- the sink on its own -----------------------------------------------------------------------


def started(call_id):
    return CallStarted(call_id, 0.0, 0.0, "agent-7", {"agent": {"channel": 0}, "customer": {"channel": 1}}, 16000,
                       "live", "tiny.en")


def test_card_numbers_are_stored_redacted(tmp_path):
    db = tmp_path / "archive.sqlite"
    sink = ArchiveSink(db, agent_id="agent-7")
    text = "my card is 4111 1111 1111 1111"
    words = [Word(w, 1.0 + i * 0.3, 1.2 + i * 0.3, 0.9) for i, w in enumerate(text.split())]
    for event in (
        started("c-0000cafe"),
        TranscriptFinal("c-0000cafe", 3.5, 3.6, "customer", text, 1.0, 3.5, words),
        CallEnded("c-0000cafe", 4.0, 4.1, duration=4.0, peak_heat=0, nudges_raised=0, nudges_followed=0, talk_ratio=None),
    ):
        sink(event)
    sink.close()
    assert "0 match(es)" in qa(db, "search", "4111").stdout
    found = qa(db, "search", "my card")
    assert found.returncode == 0 and "c-0000cafe" in found.stdout and "[card]" in found.stdout, found.stdout
    with sqlite3.connect(db) as conn:
        stored = " ".join(r[0] + r[1] for r in conn.execute("SELECT text, words FROM segments"))
    assert "4111" not in stored


def test_live_call_cut_off_keeps_what_was_committed(tmp_path):
    db = tmp_path / "archive.sqlite"
    sink = ArchiveSink(db, agent_id="agent-7")
    sink(started("c-0000beef"))
    sink(TranscriptFinal("c-0000beef", 2.0, 2.0, "customer", "I want to speak to your manager", 0.5, 2.0))
    roles = {"agent": RoleMetrics(), "customer": RoleMetrics(speaking=True)}
    for i in range(1, 31):  # 3 s of metrics, then the process "dies": no call.ended, no close()
        sink(Metrics("c-0000beef", i / 10, i / 10, roles, overlap=False, silence_s=0.0, heat=1))
    sink.sync()  # what the writer thread has committed by now
    listed = qa(db, "list")
    assert listed.returncode == 0 and "c-0000beef" in listed.stdout and "(cut off)" in listed.stdout, listed.stdout
    shown = qa(db, "show", "c-0000beef")
    assert shown.returncode == 0 and "cut off" in shown.stdout
    assert "«manager»" in qa(db, "search", "manager").stdout
    sink.close()


# --- bad input ---------------------------------------------------------------------------------


def test_missing_archive_is_one_line(tmp_path):
    assert "no archive at" in one_error_line(callmon("qa", "list", "--db", tmp_path / "none.sqlite"))
    for args in (("search", "hello"), ("show", "c-1234"), ("export", "--csv")):
        assert "no archive at" in one_error_line(qa(tmp_path / "none.sqlite", *args))
    assert not (tmp_path / "none.sqlite").exists(), "reading must not create an archive"


def test_unknown_call_is_one_line(archive, tmp_path):
    db, _, _ = archive
    assert "no call" in one_error_line(callmon("qa", "show", "c-ffffffff", "--db", db))
    assert "no call" in one_error_line(qa(db, "report", "c-ffffffff", "--html", tmp_path / "never.html"))
    assert not (tmp_path / "never.html").exists()


def test_bad_paths_are_one_line(tmp_path):
    db = tmp_path / "archive.sqlite"
    assert "no such file or folder" in one_error_line(callmon("qa", "ingest", tmp_path / "missing.flac", "--db", db))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no audio here\n")
    assert "no audio files" in one_error_line(callmon("qa", "ingest", tmp_path / "notes", "--db", db))


def test_live_sink_never_waits_on_a_locked_archive(tmp_path):
    """The pipeline's thread hands rows to the sink's writer thread: while another writer holds the
    archive, the call goes on (nothing fails, nothing is lost), and everything is written at the end."""
    db = tmp_path / "archive.sqlite"
    sink = ArchiveSink(db, agent_id="agent-7")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # e.g. a long ingest transaction
    roles = {"agent": RoleMetrics(), "customer": RoleMetrics(speaking=True)}
    sink(started("c-0000f00d"))
    for i in range(1, 601):  # a minute of metrics and a final every 5 s, all while the archive is locked
        sink(Metrics("c-0000f00d", i / 10, i / 10, roles, overlap=False, silence_s=0.0, heat=1))
        if i % 50 == 0:
            sink(TranscriptFinal("c-0000f00d", i / 10, i / 10, "customer", f"sentence number {i}", i / 10 - 1, i / 10))
    assert sink.error is None and holder.in_transaction, "the lock is still held and the sink has not failed"
    holder.execute("ROLLBACK")
    holder.close()
    sink(CallEnded("c-0000f00d", 60.0, 60.0, duration=60.0, peak_heat=1, nudges_raised=0, nudges_followed=0, talk_ratio=None))
    sink.close()  # flushed at the call's end
    assert sink.error is None
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM calls WHERE call_id = 'c-0000f00d'").fetchone() == ("complete",)
        assert conn.execute("SELECT count(*) FROM segments").fetchone()[0] == 12
        assert conn.execute("SELECT count(*) FROM metrics").fetchone()[0] == 60
