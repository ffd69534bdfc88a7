"""A call's scorecard: pure arithmetic over its archived timeline and nudges (no I/O here).

What QA reads off a call: how long, who talked how much and how fast (talk, silence, overlap and
interruptions per role), how hot it got and when (heat and customer sentiment per quarter of the
call), which nudges were raised, whether the agent followed them, how soon and with what words,
and whether it helped: the mean heat in the 30 s before the trigger (the nudge) against the 30 s
after the agent's move (when the nudge was followed), so the heat the trigger itself raised, between
the nudge and the move, counts against neither side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..vocab import HEAT_WORDS as HEAT_NAMES  # noqa: F401  (QA's modules import them from here)
from ..vocab import KINDS
from .timeline import MetricPoint

WINDOW_S = 30.0  # "heat in the 30 s before vs after each nudge"


@dataclass(frozen=True)
class NudgeRecord:
    """A nudge as archived, with how it ended (`how` is None while it was still up at the end)."""

    id: str
    kind: str
    t: float
    severity: str = "warn"
    how: str | None = None
    cleared_t: float | None = None
    followed: bool | None = None
    follow_s: float | None = None


SAME_HEAT = 0.1  # mean heats closer than this are "as before"


@dataclass(frozen=True)
class NudgeOutcome:
    """One nudge on the scorecard: followed or not, what the agent said, and the heat around it."""

    id: str
    kind: str
    t: float
    how: str | None
    followed: bool | None
    follow_s: float | None
    heat_before: float | None  # mean heat over [t - 30, t): before the trigger
    heat_after: float | None  # mean heat over (move, move + 30], move = t + follow_s; None unless followed
    heat_peak: float | None = None  # the highest heat from the nudge to the move (or 30 s): what the trigger raised
    agent_said: str | None = None  # the agent's first words after the nudge, up to the move

    @property
    def verdict(self) -> str | None:
        """Did it help: "calmer", "as before" or "hotter" after the move than before the trigger; None when not followed."""
        if self.heat_before is None or self.heat_after is None:
            return None
        if self.heat_after < self.heat_before - SAME_HEAT:
            return "calmer"
        return "as before" if self.heat_after <= self.heat_before + SAME_HEAT else "hotter"

    @property
    def calmed(self) -> bool | None:
        """True when it helped: after the move no hotter than before the trigger; None when not followed."""
        return None if self.verdict is None else self.verdict != "hotter"


@dataclass(frozen=True)
class Quarter:
    """One quarter of the call: mean heat and the customer's mean hostility (sentiment)."""

    start: float
    end: float
    heat: float | None
    hostility: float | None

    @property
    def sentiment(self) -> str | None:
        """The customer's sentiment from their hostility: negative, mixed or neutral; None when unknown."""
        if self.hostility is None:
            return None
        return "negative" if self.hostility >= 0.5 else "mixed" if self.hostility >= 0.2 else "neutral"


@dataclass(frozen=True)
class Talk:
    """Who spoke how long: seconds each side, both at once, nobody; interruptions by the agent."""

    agent_s: float
    customer_s: float
    overlap_s: float
    silence_s: float
    agent_interruptions: int


@dataclass(frozen=True)
class Scorecard:
    """Everything QA scores a call by."""

    duration_s: float
    talk_ratio: float | None  # the agent's share of the time anyone spoke
    agent_pace_wpm: float | None  # mean over the seconds the pace was known
    customer_pace_wpm: float | None
    interruptions: int
    silence_share: float | None  # share of the call when nobody spoke
    peak_heat: int | None
    mean_heat: float | None
    nudges_by_kind: dict[str, int] = field(default_factory=dict)
    nudges_raised: int = 0
    nudges_followed: int = 0
    nudges_dismissed: int = 0
    followed_rate: float | None = None  # followed / (raised - dismissed)
    mean_follow_s: float | None = None
    heat_before_mean: float | None = None  # over the followed nudges that have both windows
    heat_after_mean: float | None = None
    nudges: list[NudgeOutcome] = field(default_factory=list)
    quarters: list[Quarter] = field(default_factory=list)
    talk: Talk | None = None

    def flat(self) -> dict[str, object]:
        """One flat row (for CSV): the figures, then one count column per nudge kind."""
        row: dict[str, object] = {
            "duration_s": round(self.duration_s, 2),
            "talk_ratio": _r(self.talk_ratio, 3),
            "agent_pace_wpm": _r(self.agent_pace_wpm, 1),
            "customer_pace_wpm": _r(self.customer_pace_wpm, 1),
            "interruptions": self.interruptions,
            "silence_share": _r(self.silence_share, 3),
            "peak_heat": self.peak_heat,
            "mean_heat": _r(self.mean_heat, 3),
            "nudges": self.nudges_raised,
            "nudges_followed": self.nudges_followed,
            "nudges_dismissed": self.nudges_dismissed,
            "followed_rate": _r(self.followed_rate, 3),
            "mean_follow_s": _r(self.mean_follow_s, 2),
            "heat_before_trigger": _r(self.heat_before_mean, 3),
            "heat_after_move": _r(self.heat_after_mean, 3),
        }
        for i in range(4):
            q = self.quarters[i] if i < len(self.quarters) else None
            row[f"heat_q{i + 1}"] = None if q is None else _r(q.heat, 3)
            row[f"hostility_q{i + 1}"] = None if q is None else _r(q.hostility, 3)
        talk = self.talk
        for name in ("agent_s", "customer_s", "overlap_s", "silence_s"):
            row[f"talk_{name}"] = None if talk is None else round(getattr(talk, name), 1)
        for kind in KINDS:
            row[f"nudges_{kind}"] = self.nudges_by_kind.get(kind, 0)
        return row


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def heat_between(points: list[MetricPoint], lo: float, hi: float, *, lo_open: bool, hi_open: bool) -> float | None:
    """Mean heat of the points whose time falls in the interval (ends open or closed as asked)."""
    values = [
        p.heat_mean for p in points
        if p.heat_mean is not None
        and (p.t > lo if lo_open else p.t >= lo)
        and (p.t < hi if hi_open else p.t <= hi)
    ]
    return _mean(values)


def _outcome(n: NudgeRecord, points: list[MetricPoint], agent_lines: list[tuple[float, str]]) -> NudgeOutcome:
    move = n.t + n.follow_s if n.followed and n.follow_s is not None else None
    peak_end = move if move is not None else n.t + WINDOW_S
    peaks = [p.heat for p in points if p.heat is not None and n.t <= p.t <= peak_end]
    said = next((text for start, text in agent_lines if n.t <= start <= (move if move is not None else n.t + WINDOW_S) + 1.0), None)
    return NudgeOutcome(
        n.id, n.kind, n.t, n.how, n.followed, n.follow_s,
        heat_before=heat_between(points, n.t - WINDOW_S, n.t, lo_open=False, hi_open=True),
        heat_after=None if move is None else heat_between(points, move, move + WINDOW_S, lo_open=True, hi_open=False),
        heat_peak=float(max(peaks)) if peaks else None,
        agent_said=said,
    )


def quarters(points: list[MetricPoint], duration_s: float) -> list[Quarter]:
    """Heat and customer hostility per quarter of the call (empty for a call without length)."""
    if duration_s <= 0:
        return []
    out = []
    for i in range(4):
        lo, hi = duration_s * i / 4, duration_s * (i + 1) / 4
        # A point stands for the second that ends at its time, so it belongs where that second does.
        inside = [p for p in points if lo < p.t <= hi or (i == 0 and p.t <= hi)]
        out.append(Quarter(lo, hi, _mean([p.heat_mean for p in inside if p.heat_mean is not None]),
                           _mean([p.hostility for p in inside if p.hostility is not None])))
    return out


def build_scorecard(
    points: list[MetricPoint],
    nudges: list[NudgeRecord],
    *,
    duration_s: float,
    talk_ratio: float | None = None,
    peak_heat: int | None = None,
    agent_lines: list[tuple[float, str]] | None = None,
    ended: bool = True,
) -> Scorecard:
    """The scorecard of one call from its per-second timeline, its nudges and its `call.ended` summary.

    `talk_ratio` and `peak_heat` come from `call.ended` (`ended`), which covers every block; the
    analyzer's own figure on the last metrics fills in only when a call has no end (archived live
    and cut off). A ratio the analyzer could not know (a mono recording) stays None: it is never
    worked out again here. `agent_lines` (start, text) of the agent's utterances, in order, tell
    what the agent said after each nudge.
    """
    heats = [p.heat_mean for p in points if p.heat_mean is not None]
    peaks = [p.heat for p in points if p.heat is not None]
    if not ended:
        talk_ratio = next((p.talk_ratio for p in reversed(points) if p.talk_ratio is not None), None)
    quiet = sum(p.quiet_s for p in points)

    outcomes = [_outcome(n, points, agent_lines or []) for n in sorted(nudges, key=lambda n: n.t)]
    by_kind: dict[str, int] = {}
    for n in outcomes:
        by_kind[n.kind] = by_kind.get(n.kind, 0) + 1
    followed = [n for n in outcomes if n.followed]
    dismissed = sum(1 for n in outcomes if n.how == "dismissed")
    judged = len(outcomes) - dismissed
    both = [n for n in outcomes if n.heat_before is not None and n.heat_after is not None]
    return Scorecard(
        duration_s=duration_s,
        talk_ratio=talk_ratio,
        agent_pace_wpm=_mean([p.agent_pace_wpm for p in points if p.agent_pace_wpm is not None]),
        customer_pace_wpm=_mean([p.customer_pace_wpm for p in points if p.customer_pace_wpm is not None]),
        interruptions=max((p.interruptions for p in points if p.interruptions is not None), default=0),
        silence_share=min(1.0, quiet / duration_s) if duration_s > 0 and points else None,
        peak_heat=peak_heat if peak_heat is not None else (max(peaks) if peaks else None),
        mean_heat=_mean(heats),
        nudges_by_kind=by_kind,
        nudges_raised=len(outcomes),
        nudges_followed=len(followed),
        nudges_dismissed=dismissed,
        followed_rate=len(followed) / judged if judged else None,
        mean_follow_s=_mean([n.follow_s for n in followed if n.follow_s is not None]),
        heat_before_mean=_mean([n.heat_before for n in both]),  # type: ignore[misc]
        heat_after_mean=_mean([n.heat_after for n in both]),  # type: ignore[misc]
        nudges=outcomes,
        quarters=quarters(points, duration_s),
        talk=Talk(
            agent_s=sum(p.agent_speaking_s for p in points), customer_s=sum(p.customer_speaking_s for p in points),
            overlap_s=sum(p.overlap_s for p in points), silence_s=quiet,
            agent_interruptions=max((p.interruptions for p in points if p.interruptions is not None), default=0),
        ) if points else None,
    )
