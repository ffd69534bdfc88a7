"""Live capture end to end: a call played into PulseAudio null sinks, heard by `callmon live` through PortAudio."""

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import FIXTURES, REPO_ROOT
from verdicts import differences
from virtual_audio import LiveRun, split_channels, start_virtual_lines

pytestmark = pytest.mark.slow


@pytest.fixture
def virtual_lines(tmp_path_factory):
    """A private PulseAudio server with the two call lines, stopped afterwards."""
    lines = start_virtual_lines(tmp_path_factory.mktemp("pa"))  # a short path: the socket's must fit 108 bytes
    yield lines
    lines.kill()


def _callmon(env, *args, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


def test_devices_lists_the_virtual_lines_with_what_each_could_carry(virtual_lines):
    out = _callmon(virtual_lines.env, "devices")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[1]: line for line in out.stdout.splitlines() if line.strip()[:1].isdigit()}
    assert "agent mic" in rows["agent_line"]
    assert "customer line" in rows["customer_line"]
    assert "callmon live --agent-device" in out.stdout


def test_an_unknown_device_is_one_line_and_exit_2(virtual_lines):
    out = _callmon(virtual_lines.env, "live", "--agent-device", "no-such-headset", "--no-tui")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "callmon: error: no input device matches 'no-such-headset'; run `callmon devices` to list them"
    ]


def test_no_input_device_at_all_says_what_to_do():
    # No sound card and no sound server (this machine has no card; the server is pointed nowhere).
    out = _callmon({**os.environ, "PULSE_SERVER": "unix:/nonexistent"}, "live", "--no-tui", "--duration", "1")
    assert out.returncode == 2
    assert "no audio input device found" in out.stderr and "scripts/virtual-audio" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_portaudio_is_one_line_with_the_fix():
    # A fake of a machine without libportaudio2: the library lookup finds nothing.
    code = (
        "import ctypes.util, sys; ctypes.util.find_library = lambda name: None; "
        "from monitor.cli import main; sys.exit(main(['devices']))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.startswith("callmon: error: the PortAudio library is missing")
    assert "apt-get install libportaudio2" in out.stderr and "Traceback" not in out.stderr


def _expected(manifest):
    return {n["kind"] for n in manifest["expect_nudges"]}, set(manifest["forbid_nudges"])


def test_a_call_played_into_the_virtual_lines_is_transcribed_and_coached(virtual_lines, tmp_path):
    call = FIXTURES / "calls" / "scn_sd_outage_shouting.flac"
    manifest = json.loads(call.with_suffix(".json").read_text())
    sides = split_channels(call, tmp_path)
    archive = tmp_path / "calls.sqlite"
    recording = tmp_path / "heard.wav"
    run = LiveRun(virtual_lines, "--duration", str(round(manifest["duration"] + 5)), "--archive", str(archive),
                  "--record", str(recording))
    run.wait_for(lambda e: e["type"] == "metrics")  # capturing: the model is loaded and audio flows
    players = [virtual_lines.play(f"{role}_line", wav) for role, wav in sides.items()]
    code, err = run.finish()
    for p in players:
        p.wait(timeout=30)
    assert code == 0, err

    types = [e["type"] for e in run.events]
    assert types[0] == "call.started" and types[-1] == "call.ended"
    started = run.events[0]
    assert started["source"].startswith("live:agent=agent_line") and "customer=customer_line" in started["source"]
    finals = [e for e in run.events if e["type"] == "transcript.final"]
    said = " ".join(e["text"].lower() for e in finals)
    for role in ("agent", "customer"):
        assert any(e["role"] == role for e in finals), f"nothing transcribed for the {role}"
    assert "three days" in said or "internet" in said
    raised = {e["kind"] for e in run.events if e["type"] == "nudge"}
    expect, forbid = _expected(manifest)
    assert expect <= raised, f"missing nudges {expect - raised}"
    assert not raised & forbid, f"unexpected nudges {raised & forbid}"
    assert not [e for e in run.events if e["type"] == "status" and e["state"] in ("lost", "overflow")]

    # --archive: QA finds the live call with the same nudges.
    exported = _callmon(virtual_lines.env, "qa", "export", "--csv", "--db", str(archive))
    (row,) = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert row["call_id"] == started["call_id"]
    assert {k for k in expect | forbid if int(row[f"nudges_{k}"])} == expect

    # --record: a fast replay of what the monitor heard judges the call as the live call did.
    replayed = _callmon(virtual_lines.env, "replay", str(recording), "--fast", "--format", "jsonl", "-q", timeout=300)
    assert replayed.returncode == 0, replayed.stderr
    events = [json.loads(line) for line in replayed.stdout.splitlines() if line.strip()]
    assert [e for e in events if e["type"] == "nudge"], "the replay raised nothing: it compares nothing"
    assert not differences(run.events, events, ("live", "replay")), differences(run.events, events, ("live", "replay"))


def test_a_sound_server_restart_mid_call_is_reported_and_capture_resumes(virtual_lines, tmp_path):
    call = FIXTURES / "calls" / "scn_cs_legal_solicitor.flac"
    manifest = json.loads(call.with_suffix(".json").read_text())
    turns = manifest["turns"]
    # Before the restart: the agent's greeting; after it: the customer's first turn.
    before = tmp_path / "before.wav"
    after = tmp_path / "after.wav"
    subprocess.run(["sox", str(call), str(before), "remix", "1", "trim", "0", str(turns[1]["start"])], check=True)
    subprocess.run(["sox", str(call), str(after), "remix", "2", "trim", str(turns[1]["start"] - 0.3),
                    str(turns[2]["start"])], check=True)

    run = LiveRun(virtual_lines)
    run.wait_for(lambda e: e["type"] == "metrics")
    virtual_lines.play("agent_line", before).wait(timeout=30)
    run.wait_for(lambda e: e["type"] == "transcript.final" and e["role"] == "agent")

    virtual_lines.kill()
    run.wait_for(lambda e: e["type"] == "status" and e["state"] == "lost")
    time.sleep(2)  # the server stays down for a while: the monitor keeps retrying
    virtual_lines.start()
    run.wait_for(lambda e: e["type"] == "status" and e["state"] == "resumed", timeout=60)
    virtual_lines.play("customer_line", after).wait(timeout=30)
    run.wait_for(lambda e: e["type"] == "transcript.final" and e["role"] == "customer", timeout=60)
    run.proc.send_signal(signal.SIGTERM)
    code, err = run.finish()

    assert code == 130, err  # ended by a signal: cleanly, with call.ended
    assert run.events[-1]["type"] == "call.ended"
    finals = [e for e in run.events if e["type"] == "transcript.final"]
    agent_text = " ".join(e["text"] for e in finals if e["role"] == "agent").lower()
    customer_text = " ".join(e["text"] for e in finals if e["role"] == "customer").lower()
    assert "speaking" in agent_text  # the words from before the restart are kept
    assert "mortgage" in customer_text or "repayment" in customer_text  # and capture goes on after it
    states = [e["state"] for e in run.events if e["type"] == "status"]
    assert states.index("lost") < states.index("resumed")
    times = [e["t"] for e in run.events if e["type"] == "metrics"]
    assert times == sorted(times)  # call time runs on through the outage
