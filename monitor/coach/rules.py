"""The coaching rules: one small pure function per nudge kind, registered in `RULES` with its config section.

A rule reads one `Snapshot` (the analysis at one moment, and the utterance that just came in,
if any), the coach's `Memory` (which nudges are open, whether a boundary was set, ...) and its
own `[coach.<kind>]` section, and says what it wants: raise its nudge (`Raise`), or that the
nudge's situation is over (`Resolve`). The engine (engine.py) owns ids, cooldowns and expiry.
Rules never see the analyzer, the clock or each other; a role the call lacks is None and the
rules that need it do not apply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..analysis.snapshot import Snapshot, UtteranceAnalysis
from ..config import AcknowledgeRule, RuleConfig, SlowDownRule, SummarizeRule


@dataclass(frozen=True)
class Raise:
    """Raise the rule's nudge (unless the engine's cooldown says no)."""

    reason: str
    evidence: dict = field(default_factory=dict)
    severity: str | None = None  # None: the rule's configured severity


@dataclass(frozen=True)
class Resolve:
    """The open nudge's situation is over; `followed`: the agent did what it asked."""

    followed: bool = True


Action = Raise | Resolve


@dataclass(frozen=True)
class Memory:
    """What the coach remembers between snapshots, as the rules see it (read-only)."""

    open: Mapping[str, str]  # kind -> severity of each open nudge
    raised_from: frozenset[tuple[str, int]]  # (kind, utterance seq): an utterance raises a kind once
    boundary_seq: int | None  # abuse in a customer utterance after this one means the boundary did not hold
    supervisor_in: bool  # the agent has brought the supervisor in (said so, or asked from the screen)


Rule = Callable[[Snapshot, Memory, RuleConfig], list[Action]]


@dataclass(frozen=True)
class RuleSpec:
    """One row of the table: the kind (and config section), its rule, which snapshots it judges,
    and how a repeat while its nudge is open counts."""

    kind: str  # also the config section: [coach.<kind>]
    judge: Rule
    words: bool = True  # judged on snapshots that follow a final or a pause partial
    meters: bool = False  # judged on snapshots that follow a metrics block (ten a second: keep these cheap)
    misstep: bool = False  # the agent's own phrasing: followed unless they say it again while it is open


# -- word rules ------------------------------------------------------------------------------


def _said(snap: Snapshot, role: str) -> UtteranceAnalysis | None:
    u = snap.utterance
    return u if u is not None and u.role == role else None


def _evidence(u: UtteranceAnalysis, category: str, quote: str) -> dict:
    return {"quote": quote, "category": category, "hostility": u.hostility, "model": u.model, "confidence": u.confidence}


def call_supervisor(snap: Snapshot, mem: Memory, rule: RuleConfig) -> list[Action]:
    """A violent threat (critical), abuse after a boundary, a legal threat or a manager request."""
    if (u := _said(snap, "agent")) is not None:
        return [Resolve()] if "supervisor_handoff" in u.categories else []
    if (u := _said(snap, "customer")) is None:
        return []
    cats = set(u.categories)
    if "violent_threat" in cats:
        q = u.quote("violent_threat")
        return [Raise(f"The customer threatened violence: \u201c{q}\u201d.", _evidence(u, "violent_threat", q), "critical")]
    if u.abuse and mem.boundary_seq is not None and u.seq > mem.boundary_seq:
        q = u.quote("insult") or u.quote("profanity") or u.text
        return [Raise(f"The customer is still abusive after a boundary was set: \u201c{q}\u201d.",
                      _evidence(u, "abuse_after_boundary", q))]
    if mem.supervisor_in:
        return []  # already on the way: asking again changes nothing
    for category, what in (("legal_threat", "threatened legal action"), ("manager_request", "asked for a manager")):
        if category in cats:
            q = u.quote(category)
            return [Raise(f"The customer {what}: \u201c{q}\u201d.", _evidence(u, category, q))]
    return []


def set_boundary(snap: Snapshot, mem: Memory, rule: RuleConfig) -> list[Action]:
    """The customer insults or swears at the agent (not at the company, not at a thing)."""
    if (u := _said(snap, "agent")) is not None:
        return [Resolve()] if "boundary" in u.categories else []
    if (u := _said(snap, "customer")) is None or not u.abuse:
        return []
    q = u.quote("insult") or u.quote("profanity") or u.text
    category = "insult" if "insult" in u.categories else "profanity"
    return [Raise(f"The customer is abusing you: \u201c{q}\u201d.", _evidence(u, category, q))]


def acknowledge(snap: Snapshot, mem: Memory, rule: AcknowledgeRule) -> list[Action]:
    """A heated complaint, a long vented one, or one repeated; resolved when the agent acknowledges.

    Judged on the customer's finals only: a pause partial may come at a breath between sentences,
    and the move is for when they have stopped (the final follows the end of their turn by ~0.5 s).
    """
    if (u := _said(snap, "agent")) is not None:
        return [Resolve()] if "acknowledgement" in u.categories else []
    if (u := _said(snap, "customer")) is None or not u.final or len(u.words) < rule.min_words:
        return []
    if u.abuse or any((kind, u.seq) in mem.raised_from for kind in ("acknowledge", "set_boundary", "call_supervisor")):
        return []  # abuse and threats call for a boundary or the supervisor first, not empathy
    evidence = {"quote": u.text, "hostility": u.hostility, "model": u.model, "confidence": u.confidence}
    if u.repeat >= rule.repeat_similarity:
        return [Raise("The customer is repeating their complaint: they don't feel heard yet. Turn the empathy up.",
                      {**evidence, "repeat_similarity": u.repeat})]
    if u.heated:
        why = ", ".join(c for c in u.categories if c in ("exasperation", "churn_threat", "profanity"))
        customer = snap.customer
        if not why:
            why = "raised voice" if customer is not None and customer.loud else f"hostility {u.hostility:.2f}"
        return [Raise(f"The customer vented a heated complaint ({why}).",
                      {**evidence, "loud_db": customer.above_db if customer else None})]
    if u.negativity >= 2 and len(u.words) >= rule.vent_words:
        return [Raise(f"The customer vented a long complaint ({len(u.words)} words).", {**evidence, "words": len(u.words)})]
    return []


def summarize(snap: Snapshot, mem: Memory, rule: SummarizeRule) -> list[Action]:
    """A long customer turn full of facts; resolved when the agent summarises."""
    if (u := _said(snap, "agent")) is not None:
        return [Resolve()] if "summary" in u.categories else []
    c = snap.customer
    if _said(snap, "customer") is None or c is None:
        return []
    if (c.turn_s >= rule.min_turn_s or c.turn_words >= rule.min_words) and c.turn_facts >= rule.min_facts:
        return [Raise(f"The customer has talked for {c.turn_s:.0f} s with {c.turn_facts} facts to keep straight.",
                      {"turn_s": round(c.turn_s, 1), "words": c.turn_words, "facts": c.turn_facts})]
    return []


def misstep(category: str) -> Rule:
    """A rule for agent phrasing to avoid: `category` in the agent's words raises the kind, once they
    have finished the utterance (a final), not at a breath in the middle of it."""

    def rule(snap: Snapshot, mem: Memory, cfg: RuleConfig) -> list[Action]:
        u = _said(snap, "agent")
        if u is None or not u.final or category not in u.categories:
            return []
        q = u.quote(category)
        return [Raise(f"You said \u201c{q}\u201d.", {"quote": q, "category": category, "confidence": u.confidence})]

    rule.__doc__ = f"The agent's words show {category}."
    return rule


# -- meter rules -----------------------------------------------------------------------------


def slow_down(snap: Snapshot, mem: Memory, rule: SlowDownRule) -> list[Action]:
    """The agent answers a heated customer loud or fast, or races by any standard; over when the agent
    calms down, or the customer is calm and the agent no longer racing."""
    agent, customer = snap.agent, snap.customer
    if agent is None or customer is None:
        return []
    calm_customer = snap.heat < rule.customer_heat and not customer.loud and not customer.fast
    loud = agent.loud or (agent.above_db is not None and agent.above_db >= rule.agent_loud_db)
    if "slow_down" in mem.open:
        if agent.steady_s >= rule.hold_s:
            return [Resolve()]
        return [Resolve(followed=not (loud or agent.fast))] if calm_customer and not agent.racing else []
    # Loudness is heard while they speak; pace only once their words are transcribed.
    words_in = _said(snap, "agent") is not None
    loud_now = loud and (agent.speaking or words_in) and not calm_customer
    # At a calm customer only racing that goes on counts: one utterance's timing can be off.
    fast_now = words_in and (agent.racing_run >= 2 if calm_customer else agent.fast)
    if not (loud_now or fast_now):
        return []
    mine = []
    if loud_now:
        mine.append(f"you are {agent.above_db or 0:.0f} dB above your usual level" if agent.above_db is not None
                    and agent.above_db >= rule.agent_loud_db else f"you are loud ({agent.lufs} LUFS)")
    if fast_now:
        usual = f", faster than your usual {agent.usual_wpm:.0f}" if agent.usual_wpm else ""
        mine.append(f"you are speaking at {agent.wpm or 0:.0f} wpm{usual}")
    theirs = []
    if customer.loud:
        theirs.append(f"{customer.above_db:.0f} dB above their usual level" if customer.above_db is not None
                      and customer.above_db > 0 else "loud")
    if customer.fast:
        theirs.append(f"fast at {customer.wpm or 0:.0f} wpm")
    them = f", {', '.join(theirs)}" if theirs else ""
    situation = "The customer is calm but" if calm_customer else f"The customer is heated (heat {snap.heat}{them}) and"
    return [Raise(f"{situation} {' and '.join(mine)}.", {
        "heat": snap.heat, "customer_loud_db": customer.above_db, "customer_lufs": customer.lufs,
        "customer_wpm": customer.wpm, "agent_loud_db": agent.above_db, "agent_lufs": agent.lufs, "agent_wpm": agent.wpm,
    })]


def let_them_finish(snap: Snapshot, mem: Memory, rule: RuleConfig) -> list[Action]:
    """The agent started while the customer was mid-sentence and both kept going; over when the agent yields."""
    agent, customer, cut = snap.agent, snap.customer, snap.interruption
    if agent is None or customer is None:
        return []
    if cut is not None:
        return [Raise(f"You started talking {cut.customer_run_s:.1f} s into the customer's sentence and you both kept going.",
                      {"onset_t": cut.onset_t, "customer_speaking_s": cut.customer_run_s})]
    return [Resolve()] if not agent.speaking and customer.speaking else []


# The table, in the order rules are judged: threats and abuse before empathy (acknowledge skips
# an utterance that raised them), the agent's own words last.
RULES: tuple[RuleSpec, ...] = (
    RuleSpec("call_supervisor", call_supervisor),
    RuleSpec("set_boundary", set_boundary),
    RuleSpec("acknowledge", acknowledge),
    RuleSpec("slow_down", slow_down, meters=True),
    RuleSpec("let_them_finish", let_them_finish, words=False, meters=True),
    RuleSpec("avoid_blame", misstep("blame"), misstep=True),
    RuleSpec("apologize_well", misstep("poor_apology"), misstep=True),
    RuleSpec("keep_promises", misstep("overpromise"), misstep=True),
    RuleSpec("summarize", summarize),
)
