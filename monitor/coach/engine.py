"""The coach: rules over the analyzer's measures and utterances that raise and clear nudges. Pure.

Each rule is configured in `[coach.<kind>]` (severity, cooldown, expiry, message and its own
thresholds). A nudge carries its evidence (the rule, the numbers it saw, the quoted words, the
call time of the trigger). It clears when the situation resolves (the agent acknowledges, sets
the boundary, brings in the supervisor, calms down, lets the customer finish, summarises), when
the agent dismisses it, or when it expires; whether it was followed, and after how long, goes
with the `nudge.cleared` event and into the call summary.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ..analysis.analyzer import Analyzer, UtteranceAnalysis
from ..analysis.lexicon import normalise
from ..config import AnalysisConfig, CoachConfig, RuleConfig
from ..events import Event, Metrics, Nudge, NudgeCleared

KINDS = (
    "slow_down", "acknowledge", "set_boundary", "call_supervisor",
    "let_them_finish", "avoid_blame", "apologize_well", "keep_promises", "summarize",
)
# What the agent says that resolves each kind.
RESOLVED_BY = {
    "acknowledgement": "acknowledge",
    "boundary": "set_boundary",
    "supervisor_handoff": "call_supervisor",
    "summary": "summarize",
}
# Agent phrasing the coach warns about, and the kind it raises.
AGENT_MISSTEPS = {"blame": "avoid_blame", "poor_apology": "apologize_well", "overpromise": "keep_promises"}


@dataclass
class _Active:
    nudge: Nudge
    expires: float
    calm_since: float | None = None
    repeated: bool = False


class Coach:
    """Turns analysis into `nudge` and `nudge.cleared` events."""

    def __init__(self, cfg: CoachConfig, analysis: AnalysisConfig, call_id: str) -> None:
        self.cfg = cfg
        self.analysis = analysis
        self.call_id = call_id
        self.active: dict[str, _Active] = {}
        self._last_raised: dict[str, float] = {}
        self._ids = itertools.count(1)
        self._complaints: dict[float, set[str]] = {}  # heated customer utterances' words, by start
        self._boundary_at: float | None = None  # call time from which further abuse escalates
        self._turn = {"s": 0.0, "words": 0, "facts": 0}
        self._urgent_utterances: set[float] = set()  # customer utterances (by start) that raised a nudge
        self._acknowledged: set[float] = set()  # customer utterances (by start) that raised acknowledge
        self.raised = 0
        self.followed = 0
        self.last_metrics: Metrics | None = None

    # -- inputs ------------------------------------------------------------------------------

    def on_utterance(self, u: UtteranceAnalysis, analyzer: Analyzer, wall: float) -> list[Event]:
        """Rules that listen to words."""
        out: list[Event] = []
        cats = set(u.categories)
        if u.role == "agent":
            for category, kind in RESOLVED_BY.items():
                if category in cats:
                    out += self._clear(kind, u.t, wall, "resolved", followed=True)
            if "boundary" in cats and self._boundary_at is None:
                self._boundary_at = u.start
            for category, kind in AGENT_MISSTEPS.items():
                if category in cats:
                    if kind in self.active:
                        self.active[kind].repeated = True
                    out += self._raise(kind, u.t, wall, f"You said \u201c{u.quote(category)}\u201d.",
                                       {"quote": u.quote(category), "category": category, "confidence": u.confidence})
            if u.final:
                self._turn = {"s": 0.0, "words": 0, "facts": 0}
            if analyzer.roles["agent"].fast and self.last_metrics is not None:
                # Pace is known only once words are transcribed, possibly after the agent stopped.
                out += self._slow_down(self.last_metrics, self.last_metrics.roles["agent"],
                                       self.last_metrics.roles["customer"], wall, analyzer, words_in=True)
            return out
        evidence = {"quote": "", "hostility": u.hostility, "model": u.model, "confidence": u.confidence}
        abusive = "insult" in cats or ("profanity" in cats and _addressed(u.text)) or (
            (u.model or 0.0) >= self.analysis.abusive and _addressed(u.text)
        )
        if "violent_threat" in cats:
            q = u.quote("violent_threat")
            out += self._raise("call_supervisor", u.t, wall, f"The customer threatened violence: \u201c{q}\u201d.",
                               {**evidence, "quote": q, "category": "violent_threat"}, severity="critical")
        elif abusive and self._boundary_at is not None and u.start > self._boundary_at:
            q = u.quote("insult") or u.quote("profanity") or u.text
            out += self._raise("call_supervisor", u.t, wall,
                               f"The customer is still abusive after a boundary was set: \u201c{q}\u201d.",
                               {**evidence, "quote": q, "category": "abuse_after_boundary"})
        else:
            for category, what in (("legal_threat", "threatened legal action"), ("manager_request", "asked for a manager")):
                if category in cats:
                    q = u.quote(category)
                    out += self._raise("call_supervisor", u.t, wall, f"The customer {what}: \u201c{q}\u201d.",
                                       {**evidence, "quote": q, "category": category})
                    break
        if abusive:
            q = u.quote("insult") or u.quote("profanity") or u.text
            raised = self._raise("set_boundary", u.t, wall, f"The customer is abusing you: \u201c{q}\u201d.",
                                 {**evidence, "quote": q, "category": "insult" if "insult" in cats else "profanity"})
            if raised and self._boundary_at is None:
                # From now on, abuse in a later utterance means the boundary did not hold.
                self._boundary_at = u.start
            out += raised
        if any(isinstance(e, Nudge) for e in out):
            self._urgent_utterances.add(u.start)
        if u.final or u.pause:
            # A pause partial is judged like a final, ~0.5 s sooner: the customer has stopped.
            # Its final is judged again only if nothing was raised for the utterance yet.
            if u.start not in self._urgent_utterances and u.start not in self._acknowledged:
                # Abuse and threats call for a boundary or the supervisor first, not empathy.
                acked = self._acknowledge(u, analyzer, wall, evidence)
                if acked:
                    self._acknowledged.add(u.start)
                out += acked
        # A long turn full of facts: say so while it goes on (from partials), so the agent is ready when it ends.
        out += self._summarize(u, wall)
        return out

    def on_metrics(self, m: Metrics, analyzer: Analyzer, wall: float) -> list[Event]:
        """Rules that watch the meters, resolutions that need time, and expiry."""
        out: list[Event] = []
        self.last_metrics = m
        agent, customer = m.roles.get("agent"), m.roles.get("customer")
        if agent is not None and customer is not None:
            out += self._slow_down(m, agent, customer, wall, analyzer)
            if analyzer.interruption is not None:
                onset, run = analyzer.interruption
                out += self._raise("let_them_finish", m.t, wall,
                                   f"You started talking {run:.1f} s into the customer's sentence and you both kept going.",
                                   {"onset_t": round(onset, 2), "customer_speaking_s": round(run, 1),
                                    "overlap_s": self.analysis.overlap_min_s})
            ltf = self.active.get("let_them_finish")
            if ltf is not None and not agent.speaking and customer.speaking:
                out += self._clear("let_them_finish", m.t, wall, "resolved", followed=True)
        return out + self._expire(m.t, wall, only_due=True)

    def close(self, t: float, wall: float) -> list[Event]:
        """The call ended: whatever is still open expires."""
        return self._expire(t, wall, only_due=False)

    def _expire(self, t: float, wall: float, only_due: bool) -> list[Event]:
        out: list[Event] = []
        for kind, act in list(self.active.items()):
            if only_due and t < act.expires:
                continue
            # Missteps are followed when the agent did not say the same thing again.
            followed = (not act.repeated) if kind in AGENT_MISSTEPS.values() else False
            out += self._clear(kind, t, wall, "resolved" if followed else "expired", followed=followed)
        return out

    def dismiss(self, nudge_id: str, t: float, wall: float) -> list[Event]:
        """The agent dismissed a nudge."""
        for kind, act in self.active.items():
            if act.nudge.id == nudge_id:
                return self._clear(kind, t, wall, "dismissed", followed=None)
        return []

    # -- rules -------------------------------------------------------------------------------

    def _acknowledge(self, u: UtteranceAnalysis, analyzer: Analyzer, wall: float, evidence: dict) -> list[Event]:
        rule = self.cfg.acknowledge
        words = set(normalise(u.text).split())
        heated_words = {"exasperation", "churn_threat", "profanity"} & set(u.categories)
        customer = analyzer.roles.get("customer")
        loud = customer is not None and customer.above is not None and customer.above >= self.analysis.loud_db
        if len(u.words) < rule.min_words:
            return []
        repeat = max((_overlap(words, c) for start, c in self._complaints.items() if start != u.start), default=0.0)
        heated = bool(heated_words) or u.hostility >= self.analysis.tense or loud
        if heated:
            self._complaints[u.start] = words
        if repeat >= rule.repeat_similarity:
            return self._raise("acknowledge", u.t, wall,
                               "The customer is repeating their complaint: they don't feel heard yet. Turn the empathy up.",
                               {**evidence, "quote": u.text, "repeat_similarity": round(repeat, 2)})
        if heated:
            why = ", ".join(sorted(heated_words)) or ("loud" if loud else f"hostility {u.hostility:.2f}")
            return self._raise("acknowledge", u.t, wall, f"The customer vented a heated complaint ({why}).",
                               {**evidence, "quote": u.text, "loud_db": customer.above if customer else None})
        return []

    def _summarize(self, u: UtteranceAnalysis, wall: float) -> list[Event]:
        rule = self.cfg.summarize
        # The turn so far plus this utterance; only a final adds it for good (its partials came first).
        turn = {"s": self._turn["s"] + u.end - u.start, "words": self._turn["words"] + len(u.words),
                "facts": self._turn["facts"] + u.facts}
        if u.final:
            self._turn = turn
        if (turn["s"] >= rule.min_turn_s or turn["words"] >= rule.min_words) and turn["facts"] >= rule.min_facts:
            evidence = {"turn_s": round(turn["s"], 1), "words": turn["words"], "facts": turn["facts"]}
            return self._raise("summarize", u.t, wall,
                               f"The customer has talked for {turn['s']:.0f} s with {turn['facts']} facts to keep straight.",
                               evidence)
        return []

    def _slow_down(self, m: Metrics, agent, customer, wall: float, analyzer: Analyzer, words_in: bool = False) -> list[Event]:  # noqa: ANN001,E501
        rule = self.cfg.slow_down
        c_loud = analyzer.raised(customer)
        c_fast = analyzer.roles["customer"].fast
        heated = (m.heat or 0) >= rule.customer_heat or c_loud or c_fast
        ag_loud = agent.loudness_above_baseline_db is not None and agent.loudness_above_baseline_db >= rule.agent_loud_db
        ag_fast = analyzer.roles["agent"].fast
        act = self.active.get("slow_down")
        if act is not None:
            if agent.speaking and not (ag_loud or ag_fast):
                act.calm_since = m.t if act.calm_since is None else act.calm_since
                if m.t - act.calm_since >= rule.hold_s:
                    return self._clear("slow_down", m.t, wall, "resolved", followed=True)
            elif agent.speaking:
                act.calm_since = None
            return []
        if heated and (agent.speaking or words_in) and (ag_loud or ag_fast):
            parts = []
            if ag_loud:
                parts.append(f"you are {agent.loudness_above_baseline_db:.0f} dB above your usual level")
            if ag_fast:
                me = analyzer.roles["agent"]
                parts.append(f"you are speaking at {me.latest_wpm or 0:.0f} wpm, faster than your usual {me.pace_base or 0:.0f}")
            them = []
            if c_loud:
                them.append(f"{customer.loudness_above_baseline_db:.0f} dB above their usual level")
            if c_fast:
                them.append(f"faster than usual at {analyzer.roles['customer'].latest_wpm or 0:.0f} wpm")
            reason = f"The customer is heated (heat {m.heat}{', ' + ', '.join(them) if them else ''}) and {' and '.join(parts)}."
            return self._raise("slow_down", m.t, wall, reason, {
                "heat": m.heat, "customer_loud_db": customer.loudness_above_baseline_db, "customer_wpm": customer.pace_wpm,
                "agent_loud_db": agent.loudness_above_baseline_db, "agent_wpm": analyzer.roles["agent"].latest_wpm,
            })
        return []

    # -- raising and clearing ----------------------------------------------------------------

    def _rule(self, kind: str) -> RuleConfig:
        return getattr(self.cfg, kind)

    def _raise_ok(self, kind: str, t: float, severity: str | None = None) -> bool:
        rule = self._rule(kind)
        if not rule.enabled:
            return False
        active = self.active.get(kind)
        if severity == "critical" and (active is None or active.nudge.severity != "critical"):
            return True  # a violent threat never waits for a cooldown
        if active is not None:
            return False
        last = self._last_raised.get(kind)
        return last is None or t - last >= rule.cooldown_s

    def _raise(self, kind: str, t: float, wall: float, reason: str, evidence: dict, severity: str | None = None) -> list[Event]:
        if not self._raise_ok(kind, t, severity):
            return []
        rule = self._rule(kind)
        out: list[Event] = []
        if kind in self.active:  # escalation to critical replaces the open nudge
            out += self._clear(kind, t, wall, "expired", followed=False)
        nudge = Nudge(
            self.call_id, t, wall, f"n{next(self._ids)}-{kind}", kind, severity or rule.severity, rule.message, reason,
            {"rule": kind, "trigger_t": round(t, 2), **{k: v for k, v in evidence.items() if v is not None}},
        )
        self.active[kind] = _Active(nudge, t + rule.expire_s)
        self._last_raised[kind] = t
        self.raised += 1
        return out + [nudge]

    def _clear(self, kind: str, t: float, wall: float, how: str, followed: bool | None) -> list[Event]:
        act = self.active.pop(kind, None)
        if act is None:
            return []
        if followed:
            self.followed += 1
        return [NudgeCleared(self.call_id, t, wall, act.nudge.id, how, kind, followed,
                             round(t - act.nudge.t, 2) if followed else None)]


def _addressed(text: str) -> bool:
    """Aimed at the agent: second person somewhere in the utterance."""
    return bool({"you", "your", "ya", "u", "yourself"} & set(normalise(text).split()))


def _overlap(a: set[str], b: set[str]) -> float:
    """Share of the smaller utterance's content words that the other repeats."""
    stop = {"the", "a", "an", "i", "to", "and", "is", "it", "of", "my", "you", "that", "this", "s", "t", "m", "on", "for", "in"}
    a, b = a - stop, b - stop
    if len(a) < 3 or len(b) < 3:
        return 0.0
    return len(a & b) / min(len(a), len(b))
