"""What the coach decided in a call, and how two runs of the same call differ (the one-verdict rule).

Shared by the speed-invariance test (fast against paced replays) and the live test (the live call
against a replay of its recording).
"""

T_TOL_S = 0.3  # a nudge may move this much in call time
FOLLOW_TOL_S = 0.5  # and the time it took the agent to follow it this much


def verdict(events: list[dict]) -> tuple[list[tuple], list[tuple], tuple]:
    """What the coach decided: its nudges, their outcomes, and the summary counts."""
    nudges = [(e["kind"], e["severity"], e["t"]) for e in events if e["type"] == "nudge"]
    cleared = [(e["id"], e["how"], e.get("followed"), e.get("follow_s")) for e in events if e["type"] == "nudge.cleared"]
    ended = [(e["nudges_raised"], e["nudges_followed"]) for e in events if e["type"] == "call.ended"]
    return nudges, cleared, ended[-1] if ended else ()


def differences(one: list[dict], other: list[dict], names: tuple[str, str] = ("fast", "paced")) -> list[str]:
    """Each way the two runs' verdicts differ beyond the tolerances (empty: the same verdict)."""
    (an, ac, ae), (bn, bc, be) = verdict(one), verdict(other)
    x, y = names
    out = []
    if [n[:2] for n in an] != [n[:2] for n in bn]:
        out.append(f"nudges differ: {x} {an} vs {y} {bn}")
    else:
        out += [f"{a[0]} at {a[2]} s {x} vs {b[2]} s {y}" for a, b in zip(an, bn, strict=True) if abs(a[2] - b[2]) > T_TOL_S]
    if [c[:3] for c in ac] != [c[:3] for c in bc]:
        out.append(f"outcomes differ: {x} {ac} vs {y} {bc}")
    else:
        for a, b in zip(ac, bc, strict=True):
            if (a[3] is None) != (b[3] is None) or (a[3] is not None and abs(a[3] - b[3]) > FOLLOW_TOL_S):
                out.append(f"{a[0]} followed after {a[3]} s {x} vs {b[3]} s {y}")
    if ae != be:
        out.append(f"call.ended raised/followed: {x} {ae} vs {y} {be}")
    return out
