"""One role's front end on a real call: loudness, VAD, utterances and agitation from one pass."""

import ast
import json

import numpy as np
import pytest
from conftest import FIXTURES, REPO_ROOT
from faster_whisper import decode_audio

from monitor.config import Config
from monitor.stt.frontend import RoleFrontEnd

RATE = 16000
BLOCK = 1600


@pytest.fixture(scope="module")
def agent_run():
    """The agent side of short.flac through a RoleFrontEnd, block by block, plus the call's script."""
    spec = json.loads((FIXTURES / "calls" / "short.json").read_text())
    audio = decode_audio(str(FIXTURES / "calls" / "short.flac"), split_stereo=True)[spec["channels"]["agent"]]
    front = RoleFrontEnd("agent", Config(), RATE)
    readings = [front.push(audio[i : i + BLOCK]) for i in range(0, len(audio), BLOCK)]
    return spec, readings, front.flush()


def at(readings, t):
    return readings[int(t * RATE / BLOCK)]


def test_speaking_follows_the_agents_turns_and_each_turn_gives_a_final(agent_run):
    spec, readings, rest = agent_run
    finals = [u for r in readings for u in r.utterances if u.final] + rest
    for turn in spec["turns"]:
        mid = (turn["start"] + turn["end"]) / 2
        assert at(readings, mid).speaking == (turn["role"] == "agent"), turn["text"]
        if turn["role"] == "agent":
            assert any(u.start / RATE < mid < u.end / RATE for u in finals), turn["text"]
    assert all(u.role == "agent" and u.start < u.end for u in finals)


def test_loudness_is_the_voice_over_the_line_noise(agent_run):
    spec, readings, _ = agent_run
    talking = [r.lufs for r in readings if r.speaking]
    quiet = [r.lufs for r in readings[: int(0.4 * RATE / BLOCK)]]  # before the first turn at 0.5 s
    assert np.median(talking) > np.median(quiet) + 20


def test_agitation_waits_for_the_baseline_in_speech_time(agent_run):
    """Agitation is unknown (None, not 0) until the agent has spoken `agitation_baseline_s` by the VAD."""
    _, readings, _ = agent_run
    baseline_s = Config().analysis.agitation_baseline_s
    spoken = 0.0
    for r in readings:
        if spoken < baseline_s:
            assert r.agitation is None
        spoken += BLOCK / RATE if r.speaking else 0.0
    assert spoken > baseline_s
    assert readings[-1].agitation is not None and abs(readings[-1].agitation) < 1.0  # a calm agent stays near 0


BASE = {"config", "errors", "resources"}  # leaf modules every layer may use


@pytest.mark.parametrize(("layer", "allowed"), [("audio", BASE), ("stt", BASE | {"audio"})])
def test_layers_import_only_what_is_below_them(layer, allowed):
    """audio/ measures sound and knows nothing of speech; stt/ may use audio/ but no analysis, coach or UI."""
    for path in sorted((REPO_ROOT / "monitor" / layer).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 2 and node.module:
                assert node.module.split(".")[0] in allowed, f"{path.name} imports ..{node.module}"
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.append(node.module)
            for name in names:
                if name.startswith("monitor."):
                    assert name.split(".")[1] in allowed | {layer}, f"{path.name} imports {name}"
