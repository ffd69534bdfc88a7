"""Tests for scripts/make-call, the synthetic two-party call generator."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "make-call"
SR = 16000
GAP = -0.5  # the customer starts half a second before the agent finishes

missing = [tool for tool in ("espeak-ng", "sox", "soxi") if shutil.which(tool) is None]
pytestmark = pytest.mark.skipif(
    bool(missing),
    reason=f"{', '.join(missing)} not installed (apt-get install espeak-ng sox)",
)

SPEC = {
    "name": "tiny",
    "description": "two turns, the customer cuts in before the agent finishes",
    "sample_rate": SR,
    "lead_in_s": 0.4,
    "tail_s": 0.5,
    "voices": {"agent": {"voice": "en-us", "pitch": 50},
               "customer": {"voice": "en-gb", "pitch": 40}},
    "turns": [
        {"role": "agent", "text": "Thanks for calling, how can I help you today?",
         "rate": 170},
        {"role": "customer", "text": "Hi, I think I've been charged twice this month.",
         "rate": 190, "amplitude": 150, "gap": GAP},
    ],
    "expect_nudges": [{"kind": "let_them_finish", "after_turn": 1, "within_s": 4.0}],
    "forbid_nudges": ["call_supervisor"],
}


def make_call(spec_path, out_dir):
    return subprocess.run([sys.executable, str(SCRIPT), str(spec_path), "--out", str(out_dir)],
                          capture_output=True, text=True)


def read_flac(path):
    raw = subprocess.run(["sox", str(path), "-t", "raw", "-e", "signed", "-b", "16",
                          "-L", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype="<i2").reshape(-1, 2) / 32768.0


def frame_rms_db(x, frame=SR // 50):
    """RMS in dBFS of consecutive 20 ms frames."""
    n = len(x) // frame
    if n == 0:
        return np.array([-200.0])
    rms = np.sqrt((x[:n * frame].reshape(n, frame) ** 2).mean(axis=1))
    return 20 * np.log10(rms + 1e-12)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("make_call")
    spec_path = tmp / "tiny.json"
    spec_path.write_text(json.dumps(SPEC))
    out = tmp / "out"
    result = make_call(spec_path, out)
    assert result.returncode == 0, result.stderr
    assert "tiny.flac" in result.stderr
    return spec_path, out


def test_flac_is_stereo_16k_16bit(built):
    _, out = built
    flac = out / "tiny.flac"

    def soxi(flag):
        return subprocess.run(["soxi", flag, str(flac)], capture_output=True,
                              text=True, check=True).stdout.strip()

    assert soxi("-c") == "2"
    assert soxi("-r") == str(SR)
    assert soxi("-b") == "16"


def test_manifest_times_follow_the_gaps(built):
    _, out = built
    m = json.loads((out / "tiny.json").read_text())
    assert m["audio"] == "tiny.flac"
    assert m["sample_rate"] == SR
    assert m["channels"] == {"agent": 0, "customer": 1}
    agent, customer = m["turns"]
    assert (agent["role"], customer["role"]) == ("agent", "customer")
    assert agent["start"] == pytest.approx(SPEC["lead_in_s"], abs=0.002)
    assert agent["start"] < agent["end"] and customer["start"] < customer["end"]
    # the customer starts GAP seconds after the agent's end: a real overlap
    assert customer["start"] == pytest.approx(agent["end"] + GAP, abs=0.003)
    assert customer["start"] < agent["end"]
    assert agent["start"] < customer["start"]
    assert m["duration"] == pytest.approx(customer["end"] + SPEC["tail_s"], abs=0.003)
    # nudge expectations carried through, with the trigger turn's end time
    (exp,) = m["expect_nudges"]
    assert exp["kind"] == "let_them_finish" and exp["within_s"] == 4.0
    assert exp["trigger_end"] == customer["end"]
    assert m["forbid_nudges"] == ["call_supervisor"]
    # resolved synthesis settings are recorded
    assert customer["voice"] == "en-gb" and customer["amplitude"] == 150
    assert agent["pitch"] == 50 and agent["rate"] == 170


def test_each_channel_is_loud_only_inside_its_own_turns(built):
    _, out = built
    m = json.loads((out / "tiny.json").read_text())
    audio = read_flac(out / "tiny.flac")
    assert len(audio) / SR == pytest.approx(m["duration"], abs=0.002)
    margin = int(0.01 * SR)
    for role, ch in m["channels"].items():
        inside = np.zeros(len(audio), dtype=bool)
        for t in m["turns"]:
            if t["role"] == role:
                seg = audio[int(t["start"] * SR):int(t["end"] * SR), ch]
                assert 20 * np.log10(np.sqrt((seg ** 2).mean())) > -35, \
                    f"turn {t['index']} is too quiet on its own channel"
                inside[max(0, int(t["start"] * SR) - margin):int(t["end"] * SR) + margin] = True
        outside = audio[~inside, ch]
        # only the -60 dBFS noise floor outside the role's own turns
        assert frame_rms_db(outside).max() < -50, f"{role} channel has sound outside its turns"
    # no clipping anywhere
    assert np.abs(audio).max() < 0.999


def test_rerun_is_byte_identical(built, tmp_path):
    spec_path, out = built
    again = tmp_path / "again"
    result = make_call(spec_path, again)
    assert result.returncode == 0, result.stderr
    for name in ("tiny.flac", "tiny.json"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_bad_spec_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"turns": [{"role": "manager", "text": "hello"}]}))
    result = make_call(bad, tmp_path / "out")
    assert result.returncode == 2
    assert "unknown role 'manager'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    result = make_call(tmp_path / "nope.json", tmp_path / "out")
    assert result.returncode == 2
    assert "not found" in result.stderr


def test_gain_db_makes_a_turn_louder_and_the_limiter_still_holds(tmp_path):
    text = "I have been waiting on this refund for three weeks now."
    spec = {
        "name": "gain", "sample_rate": SR, "noise_dbfs": -80,
        "voices": {"customer": {"voice": "en-gb", "amplitude": 150}},
        "turns": [
            {"role": "customer", "text": text},
            {"role": "customer", "text": text, "gain_db": 10, "gap": 0.5},
        ],
    }
    spec_path = tmp_path / "gain.json"
    spec_path.write_text(json.dumps(spec))
    result = make_call(spec_path, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    m = json.loads((tmp_path / "out" / "gain.json").read_text())
    audio = read_flac(tmp_path / "out" / "gain.flac")
    calm, loud = m["turns"]
    assert "gain_db" not in calm and loud["gain_db"] == 10

    def rms_db(turn):
        seg = audio[int(turn["start"] * SR):int(turn["end"] * SR), m["channels"][turn["role"]]]
        return 10 * np.log10((seg ** 2).mean())

    assert rms_db(loud) - rms_db(calm) == pytest.approx(10, abs=1.5)
    # +10 dB pushes the loud turn far past full scale: the whole call is scaled
    # down to the 0.98 ceiling instead of clipping.
    peak = np.abs(audio).max()
    assert peak == pytest.approx(0.98, abs=0.005)
    assert np.count_nonzero(np.abs(audio) >= 0.999) == 0


# --------------------------------------------------------------------------------------------
# other synthesisers and the telephone line (the evaluation corpus, tests/fixtures/eval/)

needs_other_synths = pytest.mark.skipif(
    shutil.which("flite") is None or shutil.which("text2wave") is None,
    reason="flite or festival not installed (apt-get install flite festival festvox-us-slt-hts)",
)
HTS = "festival:cmu_us_slt_arctic_hts"
LINE = "I would like to talk to your supervisor about my bill, please."


def band_energy_db(x, lo, hi):
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    return 10 * np.log10(spec[(freqs >= lo) & (freqs < hi)].sum() + 1e-20)


@pytest.fixture(scope="module")
def three_synths(tmp_path_factory):
    """One call with a turn from each synthesiser (flite fast, Festival at two rates), clean and by phone."""
    tmp = tmp_path_factory.mktemp("synths")
    turns = [
        {"role": "agent", "text": LINE, "voice": "en-us"},
        {"role": "customer", "text": LINE, "voice": "flite:kal16", "gap": 0.4},
        {"role": "agent", "text": LINE, "voice": "flite:kal16", "rate": 260, "gap": 0.4},
        {"role": "customer", "text": LINE, "voice": HTS, "rate": 160, "gap": 0.4},
        {"role": "agent", "text": LINE, "voice": HTS, "rate": 260, "gap": 0.4, "gain_db": 10},
    ]
    spec = {"name": "synths", "sample_rate": SR, "noise_dbfs": -80, "turns": turns}
    (tmp / "synths.json").write_text(json.dumps(spec))
    (tmp / "phone.json").write_text(json.dumps({**spec, "name": "phone_line", "line": "telephone"}))
    for name in ("synths.json", "phone.json"):
        result = make_call(tmp / name, tmp / "out")
        assert result.returncode == 0, result.stderr
    return tmp


@needs_other_synths
def test_flite_and_festival_turns_are_placed_levelled_and_paced(three_synths):
    out = three_synths / "out"
    m = json.loads((out / "synths.json").read_text())
    audio = read_flac(out / "synths.flac")
    espeak, flite, flite_fast, hts, hts_loud_fast = m["turns"]
    assert "engine" not in espeak  # espeak-ng manifests stay as before
    assert [t.get("engine") for t in m["turns"][1:]] == ["flite", "flite", "festival", "festival"]
    assert flite["voice"] == "flite:kal16" and hts["voice"] == HTS

    def length(t):
        return t["end"] - t["start"]

    def rms_db(t):
        seg = audio[int(t["start"] * SR):int(t["end"] * SR), m["channels"][t["role"]]]
        return 10 * np.log10((seg ** 2).mean())

    # rate is espeak-ng's scale for every synthesiser: the same sentence at 260 takes ~175/260 of the time at 175
    assert length(flite_fast) / length(flite) == pytest.approx(175 / 260, abs=0.08)
    assert length(hts_loud_fast) / length(hts) == pytest.approx(160 / 260, abs=0.08)
    for t in (flite, flite_fast, hts):
        assert length(t) == pytest.approx(length(espeak) * 175 / t["rate"], rel=0.25), t["voice"]
    # levelled to espeak-ng's speech, so gain_db means the same in every voice
    assert abs(rms_db(flite) - rms_db(espeak)) < 4 and abs(rms_db(hts) - rms_db(espeak)) < 4
    assert rms_db(hts_loud_fast) - rms_db(hts) == pytest.approx(10, abs=2)


@needs_other_synths
def test_telephone_line_is_band_limited_noisy_and_the_same_either_way(three_synths, tmp_path):
    out = three_synths / "out"
    clean = read_flac(out / "synths.flac")
    phone = read_flac(out / "phone_line.flac")
    assert phone.shape == clean.shape
    m = json.loads((out / "phone_line.json").read_text())
    assert m["line"] == "telephone"
    t = m["turns"][1]  # the customer's flite turn
    speech = slice(int(t["start"] * SR), int(t["end"] * SR))
    for x in (clean, phone):
        assert band_energy_db(x[speech, 1], 300, 3400) > band_energy_db(x[speech, 1], 4000, 8000)
    # above the 3.4 kHz band edge the line carries (almost) nothing of the voice
    assert band_energy_db(phone[speech, 1], 4000, 8000) < band_energy_db(clean[speech, 1], 4000, 8000) - 20
    # the line is never silent: hiss and hum where the clean call has only its -80 dBFS floor
    silent = slice(0, int(0.3 * SR))
    assert frame_rms_db(phone[silent, 1]).min() > frame_rms_db(clean[silent, 1]).max() + 15

    # `--telephone` on the same spec's clean call is the same line (noise seeded from the name)
    spec = json.loads((three_synths / "phone.json").read_text())
    del spec["line"]
    (tmp_path / "phone_line.json").write_text(json.dumps(spec))
    assert make_call(tmp_path / "phone_line.json", tmp_path / "clean").returncode == 0
    result = subprocess.run([sys.executable, str(SCRIPT), "--telephone", str(tmp_path / "clean" / "phone_line.flac"),
                             str(tmp_path / "derived.flac")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "derived.flac").read_bytes() == (out / "phone_line.flac").read_bytes()


def test_unknown_synthesiser_or_voice_is_a_one_line_error(tmp_path):
    for voice, wanted in (("mbrola:en1", "unknown synthesiser 'mbrola'"), ("flite:bob", "unknown flite voice 'bob'")):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"turns": [{"role": "agent", "text": "hello", "voice": voice}]}))
        result = make_call(bad, tmp_path / "out")
        assert result.returncode == 2 and wanted in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    result = subprocess.run([sys.executable, str(SCRIPT), "--telephone", str(tmp_path / "none.flac"),
                             str(tmp_path / "x.flac")], capture_output=True, text=True)
    assert result.returncode == 2 and "no such call" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
