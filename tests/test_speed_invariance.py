"""One verdict at any speed: a fast replay judges the agent exactly as a paced one (or the live call) does.

Every scenario call and the bundled demo call are replayed `--fast` (no partials) and `--speed 4`
(display partials every second on their live call-time schedule, several replays at once so the
model falls behind and drops display partials as a busy live machine would). Two calls run again
with the pause partial on (`vad.end_partial_ms = 200`), which the coach then decides on too.
The nudges (kind, severity, call time within 0.3 s), their outcomes (`nudge.cleared` how, followed,
follow_s within 0.5 s) and the call summary's raised/followed counts must be the same, event by event,
and so must the final transcripts (the paced runs' finals reuse their early decodings).
The `--fast` runs are shared with the scenario suite (the `replays` fixture).
"""

from pathlib import Path

import pytest
from conftest import FIXTURES
from verdicts import differences

CALLS = [*sorted((FIXTURES / "calls").glob("scn_*.flac")), Path(__file__).resolve().parents[1] / "monitor/data/demo_call.flac"]
FAST = ("--fast",)
PACED = ("--speed", "4")
PAUSE_PARTIALS = ("--config", str(FIXTURES / "pause_partials.toml"))
RUNS = [(flac, ()) for flac in CALLS]
RUNS += [(CALLS[-1], PAUSE_PARTIALS), (FIXTURES / "calls/scn_ack_repeat_heating.flac", PAUSE_PARTIALS)]


@pytest.fixture(scope="module")
def paced(replays):
    for extra in {extra for _, extra in RUNS}:
        flacs = [flac for flac, e in RUNS if e == extra]
        replays.prefetch(flacs, FAST + extra, jobs=2)
        replays.prefetch(flacs, PACED + extra, jobs=3)
    return replays


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the first test replays every call at both paces (about 2 min on a quiet 2-core machine)
@pytest.mark.parametrize(("flac", "extra"), RUNS, ids=[f.stem + ("-pause-partials" if e else "") for f, e in RUNS])
def test_fast_and_paced_replays_give_the_same_verdict(flac, extra, paced):
    fast, slow = paced.events(flac, FAST + extra), paced.events(flac, PACED + extra)
    assert any(e["type"] == "transcript.partial" for e in slow), "the paced replay made no partials: it tests nothing"
    if extra:
        assert any(e["type"] == "transcript.partial" and e["pause"] for e in fast), "no pause partial in the fast replay"
    assert not differences(fast, slow), f"{flac.stem}: " + "; ".join(differences(fast, slow))
    # The transcript too: a paced final reuses the words of its early decoding, which must be the
    # words a fast replay gets by decoding the final itself.
    assert finals(fast) == finals(slow)


def finals(events):
    return [(e["role"], e["text"], e["start"], e["end"]) for e in events if e["type"] == "transcript.final"]


def test_the_comparison_notices_a_moved_nudge():
    base = [{"type": "nudge", "kind": "acknowledge", "severity": "warn", "t": 10.0},
            {"type": "nudge.cleared", "id": "n1-acknowledge", "how": "resolved", "followed": True, "follow_s": 3.0},
            {"type": "call.ended", "nudges_raised": 1, "nudges_followed": 1}]
    assert differences(base, base) == []
    moved = [dict(base[0], t=10.5), base[1], base[2]]
    expired = [base[0], dict(base[1], how="expired", followed=False, follow_s=None), dict(base[2], nudges_followed=0)]
    assert differences(base, moved) and len(differences(base, expired)) == 2
