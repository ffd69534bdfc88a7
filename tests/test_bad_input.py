"""`callmon replay` on input it cannot use: one clear line, exit 2, no traceback, nothing lost.

The standard: bad input gets exactly ONE line on stderr, starting `callmon: error:`, that names
what is wrong (and what to do); the exit code is 2; no traceback; and nothing on stdout, so a
JSONL consumer never sees a call that was started and never ended. A file damaged part-way is
the exception: what was decoded before the damage is transcribed and the call is closed.
"""

import json
import random
import wave

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
