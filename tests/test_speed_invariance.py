"""One verdict at any speed: a fast replay judges the agent exactly as a paced one (or the live call) does.

Every scenario call and the bundled demo call are replayed `--fast` (no partials) and `--speed 4`
(display partials every second and the pause partials, on their live call-time schedule, several
replays at once so the model falls behind and drops display partials as a busy live machine would).
The nudges (kind, severity, call time within 0.3 s), their outcomes (`nudge.cleared` how, followed,
follow_s within 0.5 s) and the call summary's raised/followed counts must be the same, event by event.
The `--fast` runs are shared with the scenario suite (the `replays` fixture).
"""

from pathlib import Path

import pytest
from conftest import FIXTURES

CALLS = [*sorted((FIXTURES / "calls").glob("scn_*.flac")), Path(__file__).resolve().parents[1] / "monitor/data/demo_call.flac"]
FAST = ("--fast",)
PACED = ("--speed", "4")
T_TOL_S = 0.3
FOLLOW_TOL_S = 0.5


def verdict(events: list[dict]) -> tuple[list[tuple], list[tuple], tuple]:
    """What the coach decided: its nudges, their outcomes, and the summary counts."""
    nudges = [(e["kind"], e["severity"], e["t"]) for e in events if e["type"] == "nudge"]
    cleared = [(e["id"], e["how"], e.get("followed"), e.get("follow_s")) for e in events if e["type"] == "nudge.cleared"]
    ended = [(e["nudges_raised"], e["nudges_followed"]) for e in events if e["type"] == "call.ended"]
    return nudges, cleared, ended[-1] if ended else ()


def differences(fast: list[dict], paced: list[dict]) -> list[str]:
    (fn, fc, fe), (pn, pc, pe) = verdict(fast), verdict(paced)
    out = []
    if [n[:2] for n in fn] != [n[:2] for n in pn]:
        out.append(f"nudges differ: fast {fn} vs paced {pn}")
    else:
        out += [f"{a[0]} at {a[2]} s fast vs {b[2]} s paced" for a, b in zip(fn, pn, strict=True) if abs(a[2] - b[2]) > T_TOL_S]
    if [c[:3] for c in fc] != [c[:3] for c in pc]:
        out.append(f"outcomes differ: fast {fc} vs paced {pc}")
    else:
        for a, b in zip(fc, pc, strict=True):
            if (a[3] is None) != (b[3] is None) or (a[3] is not None and abs(a[3] - b[3]) > FOLLOW_TOL_S):
                out.append(f"{a[0]} followed after {a[3]} s fast vs {b[3]} s paced")
    if fe != pe:
        out.append(f"call.ended raised/followed: fast {fe} vs paced {pe}")
    return out


@pytest.fixture(scope="module")
def paced(replays):
    replays.prefetch(CALLS, FAST, jobs=2)
    replays.prefetch(CALLS, PACED, jobs=3)
    return replays


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the first test replays every call at both paces (about 2 min on a quiet 2-core machine)
@pytest.mark.parametrize("flac", CALLS, ids=lambda p: p.stem)
def test_fast_and_paced_replays_give_the_same_verdict(flac, paced):
    fast, slow = paced.events(flac, FAST), paced.events(flac, PACED)
    assert any(e["type"] == "transcript.partial" for e in slow), "the paced replay made no partials: it tests nothing"
    assert not differences(fast, slow), f"{flac.stem}: " + "; ".join(differences(fast, slow))


def test_the_comparison_notices_a_moved_nudge():
    base = [{"type": "nudge", "kind": "acknowledge", "severity": "warn", "t": 10.0},
            {"type": "nudge.cleared", "id": "n1-acknowledge", "how": "resolved", "followed": True, "follow_s": 3.0},
            {"type": "call.ended", "nudges_raised": 1, "nudges_followed": 1}]
    assert differences(base, base) == []
    moved = [dict(base[0], t=10.5), base[1], base[2]]
    expired = [base[0], dict(base[1], how="expired", followed=False, follow_s=None), dict(base[2], nudges_followed=0)]
    assert differences(base, moved) and len(differences(base, expired)) == 2
