"""`qa search`: the query language and matches that survive ASR errors, on a real SQLite archive.

The calls are written through the live `ArchiveSink` (real SQLite, real FTS5), with transcripts as
tiny.en writes them, near-misses included ("supervisers", "super visor", "lones"); no model runs.
The real-model archive (test_qa.py) checks the same on what tiny.en wrote for a fixture call.
"""

import io
import sqlite3
from contextlib import redirect_stderr, redirect_stdout

import pytest

from monitor.cli import main
from monitor.events import Bookmark, CallEnded, CallStarted, Nudge, SupervisorRequested, TranscriptFinal
from monitor.qa.archive import ArchiveSink
from monitor.qa.search import fts_query, parse, skeleton

CALLS = {
    "c-00000001": [("customer", "I want to speak to your supervisers right now"), ("agent", "Of course, one moment")],
    "c-00000002": [("customer", "Just cancel my contract, I'm done"), ("agent", "I can help you cancel it today")],
    "c-00000003": [("customer", "I was promised a refund last week"), ("customer", "put me through to a super visor")],
    "c-00000004": [("agent", "Lumen foam lones, Derek speaking"), ("customer", "the manager said I could speak to him later")],
}


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("search") / "archive.sqlite"
    for call_id, lines in CALLS.items():
        sink = ArchiveSink(path, agent_id="agent-7")
        sink(CallStarted(call_id, 0.0, 0.0, "agent-7", {"agent": {"channel": 0}, "customer": {"channel": 1}}, 16000,
                         "live", "tiny.en"))
        for i, (role, text) in enumerate(lines):
            sink(TranscriptFinal(call_id, 5.0 * i + 4, 0.0, role, text, 5.0 * i, 5.0 * i + 4))
        if call_id == "c-00000001":
            sink(Nudge(call_id, 4.5, 0.0, "n1-call_supervisor", "call_supervisor", "warn", "Offer a supervisor",
                       "they asked for a manager", {"quote": "speak to your supervisers"}))
            sink(SupervisorRequested(call_id, 6.0, 0.0, "wants a manager"))
        if call_id == "c-00000003":
            sink(Bookmark(call_id, 2.0, 0.0, "refund promised"))
        sink(CallEnded(call_id, 12.0, 0.0, duration=12.0, peak_heat=1, nudges_raised=0, nudges_followed=0, talk_ratio=None))
        sink.close()
    return path


def search(db, *args):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["qa", "search", *args, "--db", str(db)])
    assert code == 0, err.getvalue()
    return {line.split()[0] for line in out.getvalue().splitlines() if line.startswith("c-")}, out.getvalue(), err.getvalue()


def test_a_near_miss_of_tiny_en_is_found_and_named(db):
    found, out, err = search(db, "supervisor")
    assert found == {"c-00000001", "c-00000003"}, out
    assert "supervisers" in err and "super visor" in err, "the user is told which near-misses were searched"
    assert search(db, "supervisor", "--exact")[0] == set()
    assert search(db, "loans")[0] == {"c-00000004"}, "same consonants: lones"


def test_or_and_near_phrases_and_prefixes(db):
    assert search(db, "cancel OR refund")[0] == {"c-00000002", "c-00000003"}
    assert search(db, "cancel AND contract")[0] == {"c-00000002"}
    assert search(db, '"speak to" NEAR manager')[0] == {"c-00000004"}
    assert search(db, "speak NEAR/2 later")[0] == {"c-00000004"}, "speak to him later: 2 words between"
    assert search(db, "speak NEAR/1 later")[0] == set(), "more than 1 word apart"
    assert search(db, "promis*")[0] == {"c-00000003"}
    assert search(db, "cancel today")[0] == set(), "words in a row are a phrase"
    assert search(db, "cancel it today")[0] == {"c-00000002"}
    _, out, _ = search(db, "refund")
    assert "«refund»" in out


def test_events_by_kind(db):
    found, out, _ = search(db, "--kind", "call_supervisor")
    assert found == {"c-00000001"} and ">>> call_supervisor" in out
    assert search(db, "--kind", "supervisor_requested")[0] == {"c-00000001"}
    found, out, _ = search(db, "--kind", "bookmark")
    assert found == {"c-00000003"} and "refund promised" in out
    assert search(db, "refund", "--kind", "bookmark")[0] == {"c-00000003"}, "words within calls that have the event"


@pytest.mark.parametrize("text", ['"unclosed', "OR OR", "NEAR", "(((", "a AND", "*", 'NEAR/x "'])
def test_no_input_is_an_fts_syntax_error(db, text):
    from monitor.errors import BadInput

    try:
        query, _ = fts_query(text)
    except BadInput:
        return  # nothing to search for: one line for the user
    with sqlite3.connect(db) as conn:  # raises sqlite3.OperationalError ("fts5: syntax error") otherwise
        conn.execute("SELECT count(*) FROM segments_fts WHERE segments_fts MATCH ?", (query,)).fetchone()


def test_parse_and_skeleton():
    assert [[p.words for _, ps in clause for p in ps] for clause in parse("a b OR c")] == [[("a", "b")], [("c",)]]
    assert skeleton("loans") == skeleton("lones") == "lns"


def test_ingest_progress_shows_an_eta_from_the_start_then_the_measured_speed():
    """The live line before any call has finished: an estimated ETA at once, then speed from the workers' reports."""
    from datetime import UTC, datetime

    from monitor.qa.cluster import Job
    from monitor.qa.ingest import ProgressLine

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    jobs = [Job(f"calls/c{i}.flac", f"/calls/c{i}.flac", f"{i:064x}", 600.0, "a", datetime.now(UTC)) for i in range(3)]
    progress = ProgressLine(Terminal(), total=3, audio_total_s=1800.0, quiet=False, eta_speed=6.0)
    progress.slots = 2
    first = progress.status()
    assert first.startswith("ingest 0/3 calls, starting, ETA ~2:30"), first  # 1800 s / (6 × 2)
    progress.started(jobs[0])
    progress.t0 -= 60.0  # a minute later (no sleeping in tests)
    progress.reported((0.0, {"hash": jobs[0].content_hash, "t": 300.0}))
    line = progress.status()
    assert "0/3 calls, 5.0 call-h/h, ETA 5:00, now c0.flac" in line, line  # 300 s of call in 60 s; 1500 s left
    progress.finished(jobs[0], 600.0)
    assert progress.status().startswith("ingest 1/3 calls") and len(progress.status()) < 80
