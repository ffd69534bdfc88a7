"""The scenario suite: whole synthetic calls through `callmon replay`, checked against their manifests.

Every `tests/fixtures/calls/scn_*.flac` was made by `scripts/make-call` from
`tests/fixtures/specs/scn_*.json`; its manifest (`scn_*.json` beside it) says which nudges the
coach must raise and by when (`expect_nudges`: kind, after_turn, within_s and the generator's
`trigger_end`), and which it must never raise in that call (`forbid_nudges`).

* `test_scenario[NAME]` (one test per call) replays the call once, as a user would
  (`callmon replay FILE --fast --format jsonl -q`), and checks that every expected kind has a
  `nudge` event with `t` in [trigger_end - 0.5, trigger_end + within_s] (and the expected
  `severity`, where the expectation names one), and that no forbidden kind is raised anywhere.
* `test_calm_calls_raise_no_core_nudges` checks across the calm calls (no expectations, the core
  four forbidden) that at least 4 stayed free of the core four.
Where the trigger is: the agent's turn for agent-side kinds (let_them_finish: the overlapping
agent turn), else the customer's turn. `slow_down` is anchored on the customer's loud/fast turn;
the agent's fast or loud answer starts at most 1 s after it and is short, so the window covers it
whether the coach reacts to the agent's loudness at once or to their pace at the end of the answer.
Word-triggered phrases sit in the last sentence of their turn (the segmenter may split a turn at a
sentence pause, and the window starts only 0.5 s before the turn's end).

* `test_manifest_*` and `test_coverage` need no model: the fixtures themselves are consistent
  (expectations name real turns of the right speaker, manifests match their specs) and the suite
  covers every nudge kind as the design asks.

The replay tests run the real tiny.en model over about ten minutes of audio (marked `slow`).
"""

import json
import re
from functools import cache
from pathlib import Path

import pytest
from conftest import FIXTURES

CALLS_DIR = FIXTURES / "calls"
SPECS_DIR = FIXTURES / "specs"
MANIFESTS = sorted(CALLS_DIR.glob("scn_*.json"))

CORE = ("slow_down", "acknowledge", "set_boundary", "call_supervisor")
KINDS = CORE + ("let_them_finish", "avoid_blame", "apologize_well", "keep_promises", "summarize")
AGENT_KINDS = {"let_them_finish", "avoid_blame", "apologize_well", "keep_promises"}  # the agent's turn triggers
WITHIN_S = {kind: 6.0 if kind in ("acknowledge", "slow_down", "summarize") else 4.0 for kind in KINDS}
EARLY_S = 0.5  # a nudge may come this much before the trigger turn's end (decided on partial speech)

MIN_CALLS = 16
MIN_CALM_CALLS = 5
MIN_QUIET_CALM_CALLS = 4
MIN_CORE_CALLS = 3  # calls expecting each core kind
MAX_TOTAL_FLAC_BYTES = 12 * 1024 * 1024


def _id(path):
    return path.stem


@cache
def manifest(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def is_calm(m: dict) -> bool:
    """A calm call expects nothing and forbids all of the core four."""
    return not m["expect_nudges"] and set(CORE) <= set(m["forbid_nudges"])


# --------------------------------------------------------------------------------------------
# replay: one run per call, shared with the speed-invariance test (the `replays` fixture in conftest.py)


def _show(nudges):
    if not nudges:
        return "no nudges at all"
    return "nudges raised: " + ", ".join(f"{n.get('kind')}@{n.get('t')}" for n in nudges)


@pytest.mark.slow
@pytest.mark.parametrize("path", MANIFESTS, ids=_id)
def test_scenario(path, replays):
    check_expectations(path, replays)


@pytest.mark.slow
def test_bundled_demo_call_escalates_through_the_core_four(replays):
    demo = Path(__file__).resolve().parents[1] / "monitor" / "data" / "demo_call.json"
    assert {e["kind"] for e in manifest(demo)["expect_nudges"]} >= {"slow_down", "acknowledge", "set_boundary", "call_supervisor"}
    check_expectations(demo, replays)


def check_expectations(path, replays):
    m = manifest(path)
    nudges = replays.nudges(path.with_suffix(".flac"))
    problems = []
    for exp in m["expect_nudges"]:
        kind, end, within = exp["kind"], exp["trigger_end"], exp["within_s"]
        lo, hi = end - EARLY_S, end + within
        hits = [n for n in nudges if n.get("kind") == kind and lo <= n.get("t", float("-inf")) <= hi]
        turn = m["turns"][exp["after_turn"]]
        what = f"{kind} after turn {exp['after_turn']} ({turn['role']}: {turn['text']!r})"
        if not hits:
            problems.append(f"missing {what}: wanted t in [{lo:.2f}, {hi:.2f}]")
        elif "severity" in exp and not any(n.get("severity") == exp["severity"] for n in hits):
            got = sorted({str(n.get("severity")) for n in hits})
            problems.append(f"{what}: severity {exp['severity']!r} wanted, got {got}")
    for kind in m["forbid_nudges"]:
        for n in nudges:
            if n.get("kind") == kind:
                problems.append(f"forbidden {kind} raised at t={n.get('t')}: {n.get('reason')!r}")
    assert not problems, f"{m['name']} ({m['description']})\n  " + "\n  ".join(problems) + f"\n  {_show(nudges)}"


@pytest.mark.slow
def test_calm_calls_raise_no_core_nudges(replays):
    calm = [p for p in MANIFESTS if is_calm(manifest(p))]
    assert len(calm) >= MIN_QUIET_CALM_CALLS, "not enough calm calls to judge"
    noisy = {}
    for p in calm:
        core = [n for n in replays.nudges(p.with_suffix(".flac")) if n.get("kind") in CORE]
        if core:
            noisy[p.stem] = _show(core)
    quiet = len(calm) - len(noisy)
    assert quiet >= MIN_QUIET_CALM_CALLS, (
        f"only {quiet} of {len(calm)} calm calls raised none of the core four nudges "
        f"(wanted at least {MIN_QUIET_CALM_CALLS}): {noisy}"
    )


# --------------------------------------------------------------------------------------------
# the fixtures themselves (no model needed)


FACT = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|forty|fifty|hundred|thousand"
    r"|pounds?|dollars?|euros?|[a-z]+teenth|first|second|third|monday|tuesday|wednesday|thursday|friday"
    r"|saturday|sunday|january|february|march|april|may|june|july|august|september|october|november"
    r"|december)\b",
    re.IGNORECASE,
)


@pytest.mark.parametrize("path", MANIFESTS, ids=_id)
def test_manifest_matches_its_spec_and_audio(path):
    m = manifest(path)
    assert m["name"] == path.stem and m["audio"] == path.stem + ".flac"
    assert path.with_suffix(".flac").is_file(), "FLAC missing: run scripts/make-call on the spec"
    spec_path = SPECS_DIR / path.name
    assert spec_path.is_file(), f"no spec {spec_path.name} for this call"
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    stale = "manifest is stale: run `scripts/make-call tests/fixtures/specs/" + path.name + "`"
    assert [" ".join(t["text"].split()) for t in spec["turns"]] == [t["text"] for t in m["turns"]], stale
    assert [{k: v for k, v in e.items() if k != "trigger_end"} for e in m["expect_nudges"]] \
        == spec.get("expect_nudges", []), stale
    assert m["forbid_nudges"] == spec.get("forbid_nudges", []), stale
    assert m["channels"] == {"agent": 0, "customer": 1}
    assert m["noise_dbfs"] == -80
    assert 20 <= m["duration"] <= 45, f"call lasts {m['duration']} s"


@pytest.mark.parametrize("path", MANIFESTS, ids=_id)
def test_manifest_expectations_reference_real_turns(path):
    m = manifest(path)
    turns = m["turns"]
    assert {t["role"] for t in turns} == {"agent", "customer"}, "a scenario is a two-party call"

    # The customer opens calm: loudness is judged against their own first seconds of speech.
    customer = [t for t in turns if t["role"] == "customer"]
    opening = customer[:2]
    assert len(opening) == 2 and all(t.get("gain_db", 0) == 0 for t in opening)
    calm_s = sum(t["end"] - t["start"] for t in opening)
    assert calm_s >= 8.0, f"the customer's two calm opening turns last only {calm_s:.1f} s"
    first_trigger = min((e["after_turn"] for e in m["expect_nudges"]), default=len(turns))
    assert first_trigger > opening[1]["index"], "a nudge is expected before the customer's calm opening ends"

    for exp in m["expect_nudges"]:
        kind, i = exp["kind"], exp["after_turn"]
        assert kind in KINDS, f"unknown nudge kind {kind!r}"
        assert isinstance(i, int) and 0 <= i < len(turns), f"{kind}: after_turn {i!r} is not a turn"
        turn = turns[i]
        assert exp["trigger_end"] == turn["end"], f"{kind}: trigger_end is not turn {i}'s end"
        assert exp["within_s"] == WITHIN_S[kind], f"{kind}: within_s should be {WITHIN_S[kind]}"
        assert kind not in m["forbid_nudges"], f"{kind} is both expected and forbidden"
        want = "agent" if kind in AGENT_KINDS else "customer"
        assert turn["role"] == want, f"{kind} should follow a {want} turn, turn {i} is the {turn['role']}'s"
        if kind == "let_them_finish":
            # the agent starts while the customer is mid-sentence and overlaps >= 1 s of their speech
            cut = max((t for t in turns[:i] if t["role"] == "customer"), key=lambda t: t["end"])
            overlap = min(cut["end"], turn["end"]) - turn["start"]
            assert turn["gap"] <= -1.0 and overlap >= 1.0, f"turn {i} overlaps the customer by {overlap:.2f} s"
        elif kind == "summarize":
            assert turn["end"] - turn["start"] >= 20.0, f"turn {i} is too short to need a summary"
            assert len(FACT.findall(turn["text"])) >= 5, f"turn {i} has too few facts (dates, amounts)"
        elif kind == "slow_down":
            # the customer is loud and/or fast, and the agent answers fast or loud straight after
            assert turn.get("gain_db", 0) >= 6 or turn["rate"] >= 200, f"turn {i} is neither loud nor fast"
            reply = next((t for t in turns[i + 1:] if t["role"] == "agent"), None)
            assert reply is not None and reply["start"] - turn["end"] <= 1.0
            assert reply["rate"] >= 200 or reply.get("gain_db", 0) >= 6, "the agent's answer is calm"
    for kind in m["forbid_nudges"]:
        assert kind in KINDS, f"unknown forbidden kind {kind!r}"
    if "slow_down" in m["forbid_nudges"]:
        # a forbidden slow_down means the agent never speeds up or raises their voice
        assert all(t["rate"] < 200 and t.get("gain_db", 0) < 6 for t in turns if t["role"] == "agent")


def test_coverage():
    ms = [manifest(p) for p in MANIFESTS]
    assert len(ms) >= MIN_CALLS, f"{len(ms)} scenario calls, wanted at least {MIN_CALLS}"
    calm = [m["name"] for m in ms if is_calm(m)]
    assert len(calm) >= MIN_CALM_CALLS, f"calm calls: {calm}"

    calls_by_kind = {kind: [] for kind in KINDS}
    trigger_texts = {kind: [] for kind in KINDS}
    for m in ms:
        for exp in m["expect_nudges"]:
            calls_by_kind[exp["kind"]].append(m["name"])
            trigger_texts[exp["kind"]].append(m["turns"][exp["after_turn"]]["text"])
    for kind in KINDS:
        need = MIN_CORE_CALLS if kind in CORE else 1
        assert len(set(calls_by_kind[kind])) >= need, f"{kind} is expected in {calls_by_kind[kind]}"
        # worded differently each time
        texts = trigger_texts[kind]
        assert len(set(texts)) == len(texts), f"{kind}: the same trigger wording is used twice"

    total = sum(p.with_suffix(".flac").stat().st_size for p in MANIFESTS)
    assert total <= MAX_TOTAL_FLAC_BYTES, f"scenario FLACs take {total / 2**20:.1f} MiB"
