"""`callmon replay` on input it cannot use: one clear line, exit 2, no traceback, nothing lost.

The standard: bad input gets exactly ONE line on stderr, starting `callmon: error:`, that names
what is wrong (and what to do); the exit code is 2; no traceback; and nothing on stdout, so a
JSONL consumer never sees a call that was started and never ended. A file damaged part-way is
the exception: what was decoded before the damage is transcribed and the call is closed.
"""

import json
import random
import wave

import numpy as np
import pytest
from conftest import FIXTURES

SHORT = FIXTURES / "calls" / "short.flac"
BAD_INPUT = 2


def error_line(result) -> str:
    """The one `callmon: error:` line of a bad-input run, after checking the whole standard."""
    out = result.stdout + result.stderr
    assert "Traceback" not in out, f"traceback on bad input:\n{result.stderr}"
    assert result.returncode == BAD_INPUT, f"exit {result.returncode}, expected 2; stderr:\n{result.stderr}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected exactly one line on stderr, got {len(lines)}:\n{result.stderr}"
    assert lines[0].startswith("callmon: error:"), lines[0]
    assert lines[0].strip() != "callmon: error:", "the error line says nothing"
    assert result.stdout == "", f"bad input must print nothing on stdout, got:\n{result.stdout[:500]}"
    return lines[0]


def replay(run_callmon, *args):
    return run_callmon("replay", *args, "--format", "jsonl", timeout=300)


# --- files that are not a call ------------------------------------------------------------


def _write_wav(path, frames: bytes, channels=2, rate=16000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)


def make_random_bytes(path):
    path.write_bytes(random.Random(7).randbytes(8192))


def make_truncated_header(path):
    full = path.with_name("full.wav")
    _write_wav(full, b"\x01\x00" * 2 * 16000)
    path.write_bytes(full.read_bytes()[:30])  # cut inside the 44-byte RIFF/fmt header


def make_text(path):
    path.write_text("This is not an MP3, it is a note about the call.\n" * 20)


def make_png_like(path):
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random.Random(3).randbytes(4096))


@pytest.mark.parametrize(
    "name, make",
    [
        ("call.wav", make_random_bytes),
        ("call.wav", make_truncated_header),
        ("call.mp3", make_text),
        ("call.flac", make_png_like),
    ],
    ids=["random-bytes-wav", "truncated-wav-header", "text-as-mp3", "png-as-flac"],
)
def test_corrupt_file_is_one_line(run_callmon, tmp_path, name, make):
    path = tmp_path / name
    make(path)
    line = error_line(replay(run_callmon, path))
    assert str(path) in line, f"the message should name the file: {line}"


def test_missing_file(run_callmon, tmp_path):
    path = tmp_path / "nowhere" / "call.wav"
    line = error_line(replay(run_callmon, path))
    assert str(path) in line and "no such file" in line.lower(), line


def test_directory_instead_of_file(run_callmon, tmp_path):
    line = error_line(replay(run_callmon, tmp_path))
    assert str(tmp_path) in line and "directory" in line, line


def test_empty_file(run_callmon, tmp_path):
    path = tmp_path / "call.wav"
    path.write_bytes(b"")
    line = error_line(replay(run_callmon, path))
    assert str(path) in line and "empty" in line, line


@pytest.mark.parametrize("fmt", ["text", "jsonl"])
def test_zero_length_audio(run_callmon, tmp_path, fmt):
    """A valid WAV header with 0 frames is bad input, and no half-open call reaches stdout."""
    path = tmp_path / "call.wav"
    _write_wav(path, b"")
    result = run_callmon("replay", path, "--format", fmt, timeout=300)
    line = error_line(result)
    assert str(path) in line, line


# --- channels -------------------------------------------------------------------------------


@pytest.mark.parametrize("flag, channel", [("--customer-channel", 5), ("--agent-channel", 2)])
def test_channel_the_file_lacks(run_callmon, flag, channel):
    line = error_line(replay(run_callmon, SHORT, flag, channel))
    assert "2 channel" in line, f"the message should say the file has 2 channels: {line}"
    assert str(channel) in line and flag in line, line


def test_same_channel_for_both_roles(run_callmon):
    line = error_line(replay(run_callmon, SHORT, "--agent-channel", 1, "--customer-channel", 1))
    assert "channel 1" in line and "different" in line, line


# --- bad option values (argparse's own usage error) ---------------------------------------


@pytest.mark.parametrize(
    "args",
    [("--speed", "0"), ("--speed", "abc"), ("--agent-channel", "-1")],
    ids=["speed-0", "speed-abc", "channel-neg"],
)
def test_bad_option_value(run_callmon, args):
    result = replay(run_callmon, SHORT, *args)
    assert result.returncode == BAD_INPUT, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    assert args[0] in result.stderr, result.stderr


# --- config files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "toml, needles",
    [
        ('[stt]\nmodle = "x"\n', ["stt.modle", "stt.model"]),
        ('[speech]\nmodel = "x"\n', ["speech", "stt"]),
        ('[vad]\nthreshold = "high"\n', ["vad.threshold", "float"]),
        ("[vad]\nthreshold = 3.0\n", ["vad.threshold", "1.0"]),
        # NaN compares false with both bounds: it must not slip through the range check.
        ("[vad]\nthreshold = nan\n", ["vad.threshold"]),
        ('[stt]\ndevice = "tpu"\n', ["stt.device", "auto", "cpu", "cuda"]),
        ('[stt\nmodel = "tiny.en"\n', ["TOML"]),
    ],
    ids=["unknown-key", "unknown-section", "wrong-type", "out-of-range", "nan", "not-a-choice", "invalid-toml"],
)
def test_config_error(run_callmon, tmp_path, toml, needles):
    cfg = tmp_path / "callmon.toml"
    cfg.write_text(toml)
    line = error_line(replay(run_callmon, SHORT, "--config", cfg))
    for needle in needles:
        assert needle in line, f"{needle!r} missing from: {line}"


def test_config_file_missing(run_callmon, tmp_path):
    cfg = tmp_path / "nope.toml"
    line = error_line(replay(run_callmon, SHORT, "--config", cfg))
    assert str(cfg) in line and "not found" in line, line


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p.write_bytes(SHORT.read_bytes()),  # arguments mixed up: the call given as the config
        lambda p: p.write_text('[stt]\nmodel = "tiny.en"\n', encoding="utf-16"),  # saved by Notepad as "Unicode"
    ],
    ids=["audio-as-config", "utf16-config"],
)
def test_config_file_not_utf8(run_callmon, tmp_path, make):
    cfg = tmp_path / "callmon.toml"
    make(cfg)
    line = error_line(replay(run_callmon, SHORT, "--config", cfg))
    assert str(cfg) in line, line


# --- models ---------------------------------------------------------------------------------


def test_unknown_model_name(run_callmon):
    line = error_line(replay(run_callmon, SHORT, "--model", "nosuchmodel"))
    assert "nosuchmodel" in line and "tiny.en" in line and "base.en" in line, line


def test_directory_that_is_not_a_model(run_callmon, tmp_path):
    (tmp_path / "README.txt").write_text("not a model\n")
    line = error_line(replay(run_callmon, SHORT, "--model", tmp_path))
    assert str(tmp_path) in line, line
    assert "tiny.en" in line, f"the message should list what to use instead (e.g. the bundled tiny.en): {line}"


# --- a file damaged part-way ----------------------------------------------------------------


@pytest.fixture(scope="module")
def damaged_flac(tmp_path_factory):
    """short.flac with everything after the first 40 % of its bytes replaced by random bytes."""
    data = bytearray(SHORT.read_bytes())
    keep = int(len(data) * 0.4)
    data[keep:] = random.Random(1).randbytes(len(data) - keep)
    path = tmp_path_factory.mktemp("damaged") / "call.flac"
    path.write_bytes(bytes(data))
    return path


def test_damaged_file_keeps_what_was_decoded(run_callmon, damaged_flac):
    result = replay(run_callmon, damaged_flac)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode in (0, BAD_INPUT), f"exit {result.returncode}; stderr:\n{result.stderr}"
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events, "nothing on stdout"
    assert events[0]["type"] == "call.started"
    assert events[-1]["type"] == "call.ended", f"the call must be closed; last event: {events[-1]['type']}"
    agent = " ".join(e["text"] for e in events if e["type"] == "transcript.final" and e["role"] == "agent").lower()
    # The first agent turn ("Thanks for calling Northwind Energy, ... How can I help?") lies before the damage.
    assert "calling" in agent and "help" in agent, f"first agent turn lost; agent finals: {agent!r}"
    if result.returncode == BAD_INPUT:
        errors = [line for line in result.stderr.splitlines() if line.startswith("callmon: error:")]
        assert len(errors) == 1, result.stderr
        assert events[-1]["error"], "exit 2 but call.ended carries no error"


# --- WAV cut short, channels that carry the same signal, more than two channels ------------


def _short_pcm(seconds=None):
    """short.flac decoded to 16 kHz int16, (samples, 2): agent on channel 0, customer on 1."""
    from monitor.audio.source import FileSource

    src = FileSource(SHORT, 1600)
    src.use_roles({"agent": 0, "customer": 1})
    blocks = list(src)
    audio = np.stack([np.concatenate([b.roles[r][: b.length] for b in blocks]) for r in ("agent", "customer")], axis=1)
    if seconds is not None:
        audio = audio[: int(seconds * 16000)]
    return (np.clip(audio, -1, 1) * 32767).astype("<i2")


@pytest.fixture(scope="module")
def cut_wav(tmp_path_factory):
    """short.flac as a WAV whose header promises 20 s but whose file stops after 40 % of the data."""
    pcm = _short_pcm()
    path = tmp_path_factory.mktemp("cut") / "call.wav"
    _write_wav(path, pcm.tobytes())
    data = path.read_bytes()
    path.write_bytes(data[: 44 + int((len(data) - 44) * 0.4)])
    return path


def test_wav_cut_short_keeps_the_transcript_and_says_where(run_callmon, cut_wav):
    result = replay(run_callmon, cut_wav)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == BAD_INPUT, f"exit {result.returncode}; a cut WAV must not pass as a whole call"
    errors = [line for line in result.stderr.splitlines() if line.startswith("callmon: error:")]
    assert len(errors) == 1 and "cut short" in errors[0], result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["type"] == "call.started" and events[-1]["type"] == "call.ended"
    assert "cut short" in events[-1]["error"] and "8.0 s" in events[-1]["error"], events[-1]["error"]
    agent = " ".join(e["text"] for e in events if e["type"] == "transcript.final" and e["role"] == "agent").lower()
    assert "calling" in agent, f"the first agent turn, before the cut, was lost: {agent!r}"


def test_qa_ingest_does_not_archive_a_cut_wav(run_callmon, cut_wav, tmp_path):
    db = tmp_path / "archive.sqlite"
    result = run_callmon("qa", "ingest", cut_wav, "--db", db, "--workers", "1", "-q", timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == BAD_INPUT, f"exit {result.returncode}:\n{result.stdout}\n{result.stderr}"
    assert "cut short" in result.stdout + result.stderr
    listed = run_callmon("qa", "list", "--db", db)
    assert "call.wav" not in listed.stdout and not any(line.startswith("c-") for line in listed.stdout.splitlines()), \
        f"a cut-short call was archived as complete:\n{listed.stdout}"


def test_channels_with_the_same_signal_are_one_mono_role(run_callmon, tmp_path):
    pcm = _short_pcm(4.5)[:, 0]  # the agent's greeting, saved twice
    path = tmp_path / "mono_as_stereo.wav"
    _write_wav(path, np.stack([pcm, pcm], axis=1).tobytes())
    result = replay(run_callmon, path, "-q")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("callmon: warning:"), result.stderr
    assert "same signal" in warnings[0] and "taken as mono" in warnings[0], warnings[0]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["roles"] == {"customer": {"channel": 0}}, events[0]["roles"]
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert finals and {e["role"] for e in finals} == {"customer"}, "the greeting must be transcribed once, as one role"
    assert events[-1]["talk_ratio"] is None


def test_more_than_two_channels_says_which_it_used(run_callmon, tmp_path):
    pcm = _short_pcm(4.5)
    quiet = np.zeros(len(pcm), dtype="<i2")
    path = tmp_path / "four.wav"
    _write_wav(path, np.stack([quiet, pcm[:, 0], quiet, pcm[:, 1]], axis=1).tobytes(), channels=4)
    result = replay(run_callmon, path, "-q", "--agent-channel", "1", "--customer-channel", "3")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("callmon: warning:"), result.stderr
    assert "4 channels" in lines[0] and "channel 1 for the agent" in lines[0] and "3 for the customer" in lines[0], lines[0]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["roles"] == {"agent": {"channel": 1}, "customer": {"channel": 3}}
    agent = " ".join(e["text"] for e in events if e["type"] == "transcript.final" and e["role"] == "agent").lower()
    assert "calling" in agent, agent
