"""Mono recordings split into agent and customer (`--diarize`), on real audio.

The mono recordings are made here from the committed stereo scenario calls by summing their two
channels (what an older recorder keeps), so the script's turns say who really spoke when. The
calls used are ones whose two voices differ (a female agent, a male customer): on the suite's
same-gender pairs of synthetic voices the diarization is much weaker, as docs/EVALUATION.md
reports for every call (scripts/eval-diarize).

* Real voices (skipped without ../shared/data): mono mixes of two RAVDESS actors of the same sex,
  a calm agent and an angry customer (scripts/real_voice_mixes.py), are told apart.
* No model: the diarization pass puts the frames on the right speaker; the split source gives
  each role the mix, silent where the other speaks; the greeting lexicon and the agent choice.
* `slow` (one replay and one QA ingest of the same mix, shared): `callmon replay MIX --diarize`
  gives both roles, says in `call.started` who the agent is and why, attributes the words to the
  right role and raises the nudge the stereo call must raise; `qa ingest --diarize` archives both
  roles; a mono file without --diarize says so once on stderr and leaves the talk ratio null.
"""

import json
import sqlite3
import sys
import wave

import numpy as np
import pytest
from conftest import FIXTURES, REPO_ROOT

from monitor.audio.source import FileSource, SplitSource
from monitor.stt.agent_speaker import choose_agent, greeting_in
from monitor.stt.diarize import HOP, RATE, Diarization, diarize
from monitor.stt.voice import PARTIAL, MelStream, encoder

CALLS = FIXTURES / "calls"
MIX_CALL = "scn_sb_abuse_after_boundary"  # 33 s: a US female agent, a Lancashire male customer who swears
OTHER_CALL = "scn_sum_car_claim"  # 42 s: a US female agent, a British male customer with a long claim


def manifest(name):
    return json.loads((CALLS / f"{name}.json").read_text(encoding="utf-8"))


def mono_mix(name):
    src = FileSource(CALLS / f"{name}.flac", 1600)
    src.use_roles({"agent": 0, "customer": 1})
    return np.concatenate([(b.roles["agent"] + b.roles["customer"])[: b.length] for b in src])


def write_wav(path, x):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def truth(name, n):
    """0 agent, 1 customer, -1 nobody per 10 ms frame, from the script's turns (overlaps left out)."""
    return truth_of_turns(manifest(name)["turns"], n)


def truth_of_turns(turns, n):
    ref = np.full(n, -1)
    for t in turns:
        a, b = int(t["start"] * RATE / HOP), int(t["end"] * RATE / HOP)
        ref[a:b] = np.where(ref[a:b] == -1, 0 if t["role"] == "agent" else 1, -2)
    return ref


@pytest.fixture(scope="module")
def mix_wav(tmp_path_factory):
    return write_wav(tmp_path_factory.mktemp("mono") / f"{MIX_CALL}.wav", mono_mix(MIX_CALL))


# --- the diarization pass and the split (no model) ------------------------------------------


@pytest.mark.parametrize("name", [MIX_CALL, OTHER_CALL])
def test_diarization_puts_the_frames_on_the_right_speaker(name):
    x = mono_mix(name)
    diar = diarize(np.array_split(x, len(x) // 1600))
    ref = truth(name, len(diar.labels))
    both = (ref >= 0) & (diar.labels >= 0)
    # Speaker 0 is whoever opens the call, and in these calls that is the agent.
    right = np.mean(diar.labels[both] == ref[both])
    assert right >= 0.9, f"{name}: only {right:.0%} of the speech frames on the right speaker"
    heard = np.mean(diar.labels[ref >= 0] >= 0)
    assert heard >= 0.8, f"{name}: only {heard:.0%} of the scripted speech found by the VAD"


def channel(name, role):
    src = FileSource(CALLS / f"{name}.flac", 1600)
    src.use_roles({"agent": 0, "customer": 1})
    return np.concatenate([b.roles[role][: b.length] for b in src])


def turn_windows(name, role, x):
    """The encoder's 1.6 s mel windows from the middle of each of the role's turns (its own channel)."""
    mels = MelStream()
    mels.push(x)
    frames = mels.frames()
    out = []
    for turn in manifest(name)["turns"]:
        a, b = int(turn["start"] * RATE / HOP), int(turn["end"] * RATE / HOP)
        if turn["role"] == role and b - a >= PARTIAL:
            mid = (a + b - PARTIAL) // 2
            out.append(frames[mid : mid + PARTIAL])
    return np.stack(out)


@pytest.mark.parametrize("name", [MIX_CALL, OTHER_CALL])
def test_voice_prints_of_one_speaker_are_closer_than_of_the_two(name):
    enc = encoder()
    agent = enc.embed(turn_windows(name, "agent", channel(name, "agent")))
    customer = enc.embed(turn_windows(name, "customer", channel(name, "customer")))
    assert len(agent) >= 2 and len(customer) >= 2
    same = min(np.mean(agent @ agent.T), np.mean(customer @ customer.T))
    across = float(np.mean(agent @ customer.T))
    assert same > across + 0.1, f"{name}: same speaker {same:.2f}, across {across:.2f}"


def test_two_real_voices_of_the_same_sex_are_told_apart(shared_data):
    # Twelve mixes of two RAVDESS actors of the same sex, each actor once the calm agent and once
    # the angry customer, saying the same sentences: only the voice tells them apart. All 132
    # pairs are scored by scripts/eval-diarize (docs/EVALUATION.md); these are the hard half.
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from real_voice_mixes import mix

    right = {}
    for agent in range(1, 13):
        m = mix(shared_data / "emotion" / "ravdess", agent, (agent + 1) % 12 + 1)  # actor n + 2: the same sex
        assert m.same_sex
        diar = diarize(np.array_split(m.audio, len(m.audio) // 1600))
        ref = truth_of_turns(m.turns, len(diar.labels))
        both = (ref >= 0) & (diar.labels >= 0)
        right[m.name] = float(np.mean(diar.labels[both] == ref[both]))  # speaker 0, who opens, is the agent
    told_apart = [name for name, r in right.items() if r >= 0.9]
    assert len(told_apart) >= 9, f"only {len(told_apart)} of 12 pairs of real voices told apart: {right}"


def test_a_quieter_line_gives_the_same_voice_print():
    x = channel(OTHER_CALL, "customer")
    loud, quiet = (encoder().embed(turn_windows(OTHER_CALL, "customer", g * x)) for g in (1.0, 0.1))
    assert np.min(np.sum(loud * quiet, axis=1)) > 0.99, "a 20 dB quieter line changed the voice print"


def test_split_source_gives_each_role_the_mix_silent_where_the_other_speaks(mix_wav):
    x = mono_mix(MIX_CALL)
    diar = diarize(np.array_split(x, len(x) // 1600))
    # The scenario calls have a -80 dBFS hiss on each channel: about 1.4e-4 RMS on the mix.
    assert 0.5e-4 < diar.noise_rms < 3e-4, f"the line's hiss measured as {diar.noise_rms:.1e}"
    split = SplitSource(FileSource(mix_wav, 1600), diar.labels, HOP, agent=0, diarization={}, noise_rms=diar.noise_rms)
    blocks = list(split)
    roles = {r: np.concatenate([b.roles[r][: b.length] for b in blocks]) for r in ("agent", "customer")}
    assert len(roles["agent"]) == len(x)
    for turn in manifest(MIX_CALL)["turns"]:
        a, b = int((turn["start"] + 0.3) * RATE), int((turn["end"] - 0.3) * RATE)  # the turn's middle
        own = "agent" if turn["role"] == "agent" else "customer"
        other = "customer" if own == "agent" else "agent"
        mix_rms = np.sqrt(np.mean(x[a:b] ** 2))
        assert np.sqrt(np.mean(roles[own][a:b] ** 2)) > 0.8 * mix_rms, f"{own} lost audio in turn {turn['index']}"
        other_rms = np.sqrt(np.mean(roles[other][a:b] ** 2))
        assert other_rms < 0.2 * mix_rms, f"{other} hears turn {turn['index']}"
        # ... but the line's hiss, as on a stereo channel, not digital silence
        assert other_rms > 0.5 * diar.noise_rms, f"{other} hears digital silence in turn {turn['index']}"


def test_gains_ramp_instead_of_clicking():
    labels = np.array([0] * 20 + [-1] * 20 + [1] * 20, dtype=np.int8)
    x = np.ones(len(labels) * HOP, dtype=np.float32)

    class Blocks:  # the mix as FileSource would yield it: a fake of the file, named as one
        path, description, error, duration_s = "fake.wav", "file:fake.wav", None, 0.6

        def use_roles(self, roles):
            assert roles == {"mix": 0}

        def __iter__(self):
            from monitor.audio.source import AudioBlock

            for start in range(0, len(x), 1600):
                yield AudioBlock(start, 1600, {"mix": x[start : start + 1600]})

    split = SplitSource(Blocks(), labels, HOP, agent=0, diarization={})
    agent = np.concatenate([b.roles["agent"] for b in split])
    assert agent[: 20 * HOP].min() == 1.0 and agent[-10 * HOP :].max() == 0.0
    assert np.max(np.abs(np.diff(agent))) <= 1.0 / HOP + 1e-6, "the gain must ramp over a frame, not jump"


@pytest.mark.parametrize("text", [
    "Thank you for calling Acme Energy, this is Jo, how can I help you today?",
    "Hello, you're through to the returns team.",
    "Good morning, you've reached Bright Bank. What can I do for you?",
    "Parcel Express, Dev speaking.",
])
def test_agent_openings_are_greetings(text):
    assert greeting_in(text), text


@pytest.mark.parametrize("text", [
    "Hi, I'm calling about my bill, it's gone up again.",
    "Honestly, this is ridiculous. I want to speak to a manager.",
    "Yeah hello, my name is Chris Patel and my order never came.",
    "Can you hear me? The line is terrible.",
])
def test_customer_openings_are_not(text):
    assert greeting_in(text) is None, text


def test_agent_speaker_setting_overrides_without_listening():
    diar = Diarization(np.array([0] * 100 + [1] * 100, dtype=np.int8))
    choice = choose_agent(diar, np.zeros(2 * RATE, dtype=np.float32), "second", transcriber=None)
    assert choice.speaker == 1 and "--agent-speaker second" in choice.reason and not choice.greeted
    fallback = choose_agent(diar, np.zeros(2 * RATE, dtype=np.float32), "auto", transcriber=None)
    assert fallback.speaker == 0 and "opens the call" in fallback.reason


# --- through the whole monitor (real model) -------------------------------------------------


@pytest.fixture(scope="module")
def mono_replay(run_callmon, mix_wav):
    result = run_callmon("replay", mix_wav, "--diarize", "--fast", "--format", "jsonl", "-q", timeout=600)
    assert result.returncode == 0, result.stderr
    return result, [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.slow
def test_replay_names_the_agent_in_call_started(mono_replay):
    result, events = mono_replay
    assert result.stderr.strip() == "", f"a split mono file needs no warning:\n{result.stderr}"
    started = events[0]
    assert started["type"] == "call.started"
    assert set(started["roles"]) == {"agent", "customer"}
    split = started["diarization"]
    assert split["method"] == "diarization" and split["agent"] == "first"
    assert "greets" in split["reason"], split["reason"]  # "Metro Rail refunds, Amy speaking."
    assert split["agent_speech_s"] > 5 and split["customer_speech_s"] > 5


@pytest.mark.slow
def test_replay_attributes_the_words_to_the_right_role(mono_replay):
    _, events = mono_replay
    turns = manifest(MIX_CALL)["turns"]

    def role_at(t):
        return min(turns, key=lambda u: 0 if u["start"] <= t <= u["end"] else min(abs(t - u["start"]), abs(t - u["end"])))["role"]

    words = [(e["role"], w) for e in events if e["type"] == "transcript.final" for w in e["words"]]
    assert len(words) > 50
    right = sum(role == role_at((w["start"] + w["end"]) / 2) for role, w in words)
    assert right / len(words) >= 0.9, f"only {right} of {len(words)} words on the right role"
    ended = events[-1]
    assert ended["type"] == "call.ended" and ended["talk_ratio"] is not None and 0.2 < ended["talk_ratio"] < 0.8


@pytest.mark.slow
def test_replay_coaches_the_mix_like_the_stereo_call(mono_replay):
    _, events = mono_replay
    m = manifest(MIX_CALL)
    nudges = [e for e in events if e["type"] == "nudge"]
    for exp in m["expect_nudges"]:
        lo, hi = exp["trigger_end"] - 0.5, exp["trigger_end"] + exp["within_s"]
        assert any(n["kind"] == exp["kind"] and lo <= n["t"] <= hi for n in nudges), \
            f"{exp['kind']} expected in [{lo:.1f}, {hi:.1f}]; got {[(n['kind'], n['t']) for n in nudges]}"
    assert not [n for n in nudges if n["kind"] in m["forbid_nudges"]]


@pytest.mark.slow
def test_qa_ingest_diarize_archives_both_roles(run_callmon, mix_wav, tmp_path):
    db = tmp_path / "archive.sqlite"
    result = run_callmon("qa", "ingest", mix_wav, "--diarize", "--db", db, "--workers", "1", "-q", timeout=600)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(db) as conn:
        roles = {r for (r,) in conn.execute("SELECT DISTINCT role FROM segments")}
        (ratio,) = conn.execute("SELECT talk_ratio FROM calls").fetchone()
    assert roles == {"agent", "customer"}
    assert ratio is not None


@pytest.mark.slow
def test_mono_without_diarize_says_so_once(run_callmon, tmp_path):
    clip = write_wav(tmp_path / "mono.wav", mono_mix(MIX_CALL)[: 5 * RATE])
    result = run_callmon("replay", clip, "--fast", "--format", "jsonl", "-q", timeout=300)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("callmon: warning:"), result.stderr
    assert "mono" in lines[0] and "talk ratio is unknown" in lines[0] and "--diarize" in lines[0], lines[0]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["diarization"] is None
    assert events[-1]["talk_ratio"] is None
