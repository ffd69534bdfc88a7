"""The file source reads what users have, and the JSONL output keeps its contract.

Every format is made from tests/fixtures/calls/short.flac (a 20 s two-channel call: agent on
channel 0, customer on channel 1) with sox, replayed once per module, and checked for what a
user would notice: the whole call, both roles, the right words on the right side.
"""

import json
import re
import shutil
import subprocess
import sys

import pytest
from conftest import FIXTURES

SHORT = FIXTURES / "calls" / "short.flac"
MANIFEST = json.loads((FIXTURES / "calls" / "short.json").read_text())
DURATION = MANIFEST["duration"]  # 19.964 s

def sox_formats() -> set[str]:
    if shutil.which("sox") is None:
        return set()
    help_text = subprocess.run(["sox", "-h"], capture_output=True, text=True).stdout
    for line in help_text.splitlines():
        if line.startswith("AUDIO FILE FORMATS:"):
            return set(line.split(":", 1)[1].split())
    return set()


def sox(src, dst, *effects_and_opts, pre=()):
    # -R: repeatable. Without it sox seeds its dither afresh each run, and at 8 kHz that noise alone
    # moves the share of the agent's words tiny.en hears from 0.42 to 0.67 (nine runs).
    subprocess.run(["sox", "-R", str(src), *pre, str(dst), *effects_and_opts], check=True, capture_output=True)


def events_of(result):
    return [json.loads(line) for line in result.stdout.splitlines()]


def finals(events, role=None):
    return [e for e in events if e["type"] == "transcript.final" and (role is None or e["role"] == role)]


def words_of(events, role):
    return " ".join(e["text"] for e in finals(events, role)).lower()


def said_only_by(role):
    """The words of the manifest that only `role` says (lower case, without punctuation)."""
    words = {r: set() for r in ("agent", "customer")}
    for turn in MANIFEST["turns"]:
        words[turn["role"]] |= set(re.findall(r"[a-z']+", turn["text"].lower()))
    other = "customer" if role == "agent" else "agent"
    return words[role] - words[other]


def share_heard(events, role, words):
    """The share of `words` found among the words of `role`'s finals."""
    heard = set(re.findall(r"[a-z']+", words_of(events, role)))
    return len(words & heard) / len(words)


# (id, output file name, sox effects, extra CLI args)
CASES = [
    ("flac-16k-original", None, (), ()),
    ("wav-44k1-stereo", "call.wav", ("rate", "44100"), ()),
    ("ogg-vorbis-8k-stereo", "call.ogg", ("rate", "8000"), ()),
    ("mp3-48k-stereo", "call.mp3", ("rate", "48000"), ()),
    ("wav-3ch-customer-on-2", "call3.wav", ("remix", "1", "0", "2"), ("--customer-channel", "2")),
]


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def replayed(request, tmp_path_factory, run_callmon):
    """One converted file replayed with --format jsonl: (case id, CompletedProcess, events)."""
    case_id, name, effects, args = request.param
    if name is None:
        path = SHORT
    else:
        if shutil.which("sox") is None:
            pytest.skip("sox not installed (apt-get install sox)")
        if name.endswith(".mp3") and "mp3" not in sox_formats():
            pytest.skip("this sox cannot write mp3 (install libsox-fmt-mp3)")
        path = tmp_path_factory.mktemp(case_id) / name
        sox(SHORT, path, *effects)
    result = run_callmon("replay", path, "--format", "jsonl", *args, timeout=300)
    events = events_of(result) if result.returncode == 0 else []
    return case_id, result, events


def test_replays_whole_call_with_both_roles(replayed):
    case_id, result, events = replayed
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, f"{case_id}: exit {result.returncode}\n{result.stderr}"
    assert events[0]["type"] == "call.started", events[0]["type"]
    assert events[-1]["type"] == "call.ended", events[-1]["type"]
    assert abs(events[-1]["duration"] - DURATION) <= 0.2, f"{case_id}: duration {events[-1]['duration']}"
    assert finals(events, "agent"), f"{case_id}: no agent finals"
    assert finals(events, "customer"), f"{case_id}: no customer finals"
    # Each side's finals hold most of the words only that side said, and few of the other side's: a
    # share, not one word, since tiny.en mishears a word here and there (at 8 kHz "my bill's" is
    # "my name is Brian"), and a swapped or missing channel fails both.
    for role, other in (("customer", "agent"), ("agent", "customer")):
        own, theirs = share_heard(events, role, said_only_by(role)), share_heard(events, role, said_only_by(other))
        assert own >= 0.5 and theirs <= 0.2, (
            f"{case_id}: {role}'s finals hold {own:.0%} of their own words, {theirs:.0%} of the {other}'s: "
            f"{words_of(events, role)!r}")


def test_jsonl_contract(replayed):
    case_id, result, events = replayed
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        event = json.loads(line)
        for key in ("schema", "type", "call_id", "t", "wall"):
            assert key in event, f"{case_id}: {key!r} missing from {line[:200]}"
    assert len({e["call_id"] for e in events}) == 1

    metrics = [e for e in events if e["type"] == "metrics"]
    duration = events[-1]["duration"]
    expected = duration * 10  # one per 100 ms block
    assert abs(len(metrics) - expected) <= expected * 0.1, f"{case_id}: {len(metrics)} metrics for {duration} s"
    for m in metrics:
        for role in ("agent", "customer"):
            rm = m["roles"][role]
            assert isinstance(rm["loudness_lufs"], (int, float)) and rm["loudness_lufs"] >= -70, rm
            assert isinstance(rm["speaking"], bool), rm
        assert isinstance(m["overlap"], bool), m
        assert isinstance(m["silence_s"], (int, float)) and m["silence_s"] >= 0, m

    for f in finals(events):
        assert f["role"] in ("agent", "customer"), f
        assert isinstance(f["text"], str) and f["text"].strip(), f
        assert f["start"] < f["end"], f"{case_id}: final with start {f['start']} >= end {f['end']}"
        assert f["words"], f"{case_id}: final without words: {f['text']!r}"
        for w in f["words"]:
            assert set(w) >= {"w", "start", "end", "p"}, w
            assert 0.0 <= w["p"] <= 1.0, w
            inside = f["start"] <= w["start"] <= w["end"] <= f["end"]
            assert inside, f"{case_id}: word {w} outside [{f['start']}, {f['end']}]"


# --- mono -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mono_wav(tmp_path_factory):
    if shutil.which("sox") is None:
        pytest.skip("sox not installed (apt-get install sox)")
    path = tmp_path_factory.mktemp("mono") / "customer.wav"
    sox(SHORT, path, "remix", "2")  # channel 1 (the customer) only
    return path


@pytest.mark.parametrize(
    "args, role", [((), "customer"), (("--mono-role", "agent", "--agent-id", "bob"), "agent")], ids=["default", "agent"]
)
def test_mono_file_is_one_role(run_callmon, mono_wav, args, role):
    result = run_callmon("replay", mono_wav, "--format", "jsonl", *args, timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    events = events_of(result)
    assert events[0]["type"] == "call.started" and events[-1]["type"] == "call.ended"
    assert set(events[0]["roles"]) == {role}, events[0]["roles"]
    assert events[0]["agent_id"] == ("bob" if "--agent-id" in args else "agent")  # who is on the floor and in QA
    fs = finals(events)
    assert fs, "no finals from the mono file"
    assert {f["role"] for f in fs} == {role}
    assert share_heard(events, role, said_only_by("customer")) >= 0.5, words_of(events, role)


# --- text output and help -------------------------------------------------------------------


def test_text_format(run_callmon):
    result = run_callmon("replay", SHORT, "--format", "text", timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(" agent " in line for line in lines), result.stdout
    assert any(" customer " in line for line in lines), result.stdout
    assert "00:05." in result.stdout, f"no call time like 00:05.x (the customer's first turn):\n{result.stdout}"
    assert not any(line.lstrip().startswith("{") for line in lines), "JSON in text output"


@pytest.mark.parametrize("args", [("--help",), ("replay", "--help")], ids=["top", "replay"])
def test_help_mentions_realtime(args):
    result = subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "--realtime" in result.stdout, result.stdout
