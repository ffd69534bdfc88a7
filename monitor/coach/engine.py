"""The coach: runs the rule table (rules.py) on each analysis snapshot and raises and clears nudges. Pure.

Each rule is configured in `[coach.<kind>]` (severity, cooldown, expiry, message and its own
thresholds). A nudge carries its evidence (the rule, the numbers it saw, the quoted words, the
call time of the trigger). It clears when its rule says the situation is over (the agent
acknowledges, sets the boundary, brings in the supervisor, calms down, lets the customer finish,
summarises; the customer calms down), when the agent dismisses it, or when it expires; whether
it was followed, and after how long, goes with the `nudge.cleared` event and into the call summary.

Decisions depend only on the snapshots received, in order (call time, utterance numbers), never
on the wall clock: `wall` is only stamped on the events.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from types import MappingProxyType

from ..analysis.snapshot import Snapshot, UtteranceAnalysis
from ..config import CoachConfig
from ..events import Event, Nudge, NudgeCleared
from .rules import RULES, Memory, Raise, Resolve, RuleSpec


@dataclass
class _Open:
    nudge: Nudge
    expires: float
    spec: RuleSpec
    repeated: bool = False


class Coach:
    """Turns analysis snapshots into `nudge` and `nudge.cleared` events."""

    def __init__(self, cfg: CoachConfig, call_id: str) -> None:
        self.cfg = cfg
        self.call_id = call_id
        self.open: dict[str, _Open] = {}
        self._last_raised: dict[str, float] = {}
        self._raised_from: set[tuple[str, int]] = set()
        self._boundary_seq: int | None = None
        self._boundary_nudged = False
        self._supervisor_in = False
        self._ids = itertools.count(1)
        self.raised = 0
        self.followed = 0
        rules = [(spec, getattr(cfg, spec.kind)) for spec in RULES if getattr(cfg, spec.kind).enabled]
        self._word_rules = [(spec, rule) for spec, rule in rules if spec.words]
        self._meter_rules = [(spec, rule) for spec, rule in rules if spec.meters]
        self._mem: Memory | None = None  # what the rules see; rebuilt only after it changed

    def on_snapshot(self, snap: Snapshot, wall: float) -> list[Event]:
        """Judge every enabled rule on one snapshot; a snapshot without words also expires what is due."""
        u = snap.utterance
        t = u.t if u is not None else snap.t
        if u is not None and u.role == "agent":
            self._agent_said(u)
        out: list[Event] = []
        for spec, rule in self._word_rules if u is not None else self._meter_rules:
            for action in spec.judge(snap, self._memory(), rule):
                if isinstance(action, Resolve):
                    changed = self._clear(spec.kind, t, wall, "resolved", action.followed)
                else:
                    changed = self._raise(spec, action, t, wall, u)
                out += changed  # (later rules see what this one did: acknowledge skips what set_boundary took)
        if u is None:
            out += self._expire(t, wall, only_due=True)
        return out

    def supervisor_requested(self, t: float, wall: float) -> list[Event]:
        """The agent asked for the supervisor from the screen: that is what `call_supervisor` asks."""
        self._supervisor_in = True
        self._mem = None
        return self._clear("call_supervisor", t, wall, "resolved", followed=True)

    def close(self, t: float, wall: float) -> list[Event]:
        """The call ended: whatever is still open expires."""
        return self._expire(t, wall, only_due=False)

    def dismiss(self, nudge_id: str, t: float, wall: float) -> list[Event]:
        """The agent dismissed a nudge."""
        for kind, act in self.open.items():
            if act.nudge.id == nudge_id:
                return self._clear(kind, t, wall, "dismissed", followed=None)
        return []

    # -- memory ------------------------------------------------------------------------------

    def _memory(self) -> Memory:
        if self._mem is None:
            self._mem = Memory(
                MappingProxyType({k: o.nudge.severity for k, o in self.open.items()}), frozenset(self._raised_from),
                self._boundary_seq, self._supervisor_in,
            )
        return self._mem

    def _agent_said(self, u: UtteranceAnalysis) -> None:
        self._mem = None
        cats = set(u.categories)
        if "supervisor_handoff" in cats:
            self._supervisor_in = True
        # The boundary stands from the agent's own boundary phrase, or from their first words after
        # the set_boundary nudge: abuse after that means it did not hold.
        if self._boundary_seq is None and ("boundary" in cats or self._boundary_nudged):
            self._boundary_seq = u.seq

    # -- raising and clearing ----------------------------------------------------------------

    def _raise(self, spec: RuleSpec, want: Raise, t: float, wall: float, u: UtteranceAnalysis | None) -> list[Event]:
        kind, rule = spec.kind, getattr(self.cfg, spec.kind)
        if u is not None and (kind, u.seq) in self._raised_from:
            return []  # the same utterance again (its final after its pause partial)
        act = self.open.get(kind)
        escalation = want.severity == "critical" and (act is None or act.nudge.severity != "critical")
        if act is not None and not escalation:
            act.repeated = True
            return []
        last = self._last_raised.get(kind)
        if not escalation and last is not None and t - last < rule.cooldown_s:
            return []  # (a violent threat never waits for a cooldown)
        out = self._clear(kind, t, wall, "expired", followed=False) if act is not None else []
        nudge = Nudge(
            self.call_id, t, wall, f"n{next(self._ids)}-{kind}", kind, want.severity or rule.severity, rule.message,
            want.reason, {"rule": kind, "trigger_t": round(t, 2), **{k: v for k, v in want.evidence.items() if v is not None}},
        )
        self.open[kind] = _Open(nudge, t + rule.expire_s, spec)
        self._mem = None
        self._last_raised[kind] = t
        if u is not None:
            self._raised_from.add((kind, u.seq))
        if kind == "set_boundary":
            self._boundary_nudged = True
        self.raised += 1
        return out + [nudge]

    def _expire(self, t: float, wall: float, only_due: bool) -> list[Event]:
        out: list[Event] = []
        for kind, act in list(self.open.items()):
            if only_due and t < act.expires:
                continue
            # Missteps are followed when the agent did not say the same thing again.
            followed = act.spec.misstep and not act.repeated
            out += self._clear(kind, t, wall, "resolved" if followed else "expired", followed=followed)
        return out

    def _clear(self, kind: str, t: float, wall: float, how: str, followed: bool | None) -> list[Event]:
        act = self.open.pop(kind, None)
        if act is None:
            return []
        self._mem = None
        if followed:
            self.followed += 1
        return [NudgeCleared(self.call_id, t, wall, act.nudge.id, how, kind, followed,
                             round(t - act.nudge.t, 2) if followed else None)]
