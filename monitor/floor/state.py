"""The hub's picture of the floor: events in, CALL objects and deltas out. No sockets, no clock of its own.

A CALL is what a dashboard shows of one call (docs/FLOOR.md has its fields). `FloorState.apply`
folds one validated event into its call and returns the deltas viewers need (none when nothing they
see changed). Values are copied on write (a new dict or list each change), so a delta waiting in a
slow viewer's queue never changes under it, and one serialisation serves every viewer.

The fold is deterministic (the caller passes `now`: with Redis, the time in the stream entry's id), so
every hub on a backplane that folds the same stream shows the same board. It is also idempotent for
what a publisher re-sends after a reconnect (call.started, transcript lines, supervisor requests,
nudges), so a hub that kept the call shows nothing twice and a restarted hub gets the call back whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..events import (
    CallEnded,
    CallStarted,
    Event,
    Metrics,
    Nudge,
    NudgeCleared,
    SupervisorRequested,
    TranscriptFinal,
)
from .protocol import FORGET_STALE_S, REMOVE_AFTER_S, STALE_S, TRANSCRIPT_TAIL, encode
from .validate import MAX_SHORT, MAX_TEXT

MAX_REQUESTS = 20  # supervisor requests kept per call (a stuck key must not grow a CALL without bound)
MAX_NUDGES = 20  # active nudges kept per call
MAX_WHISPERS = 5  # lead whispers kept per call
# Lines one pending update keeps for a viewer (an agent's whole burst at the hub's rate limit): a viewer that
# reads, however briefly it paused, misses no line of a call; one that stops reading holds this much per call.
MAX_PENDING_LINES = 200
MAX_CALLS_PER_AGENT = 16  # calls of one agent on the board; its oldest ended ones make room for a new one
# So one agent token can put at most MAX_CALLS_PER_AGENT x MAX_CALL_BYTES on a viewer's snapshot: the
# transcript tail, nudges and requests are bounded in count and validate.py bounds every text in them.
MAX_CALL_BYTES = 4 * (TRANSCRIPT_TAIL * (MAX_TEXT + 40) + (MAX_NUDGES + MAX_REQUESTS + MAX_WHISPERS) * (MAX_SHORT + 120) + 2000)


@dataclass
class Update:
    """`{"type": "update", "call_id", "set": {changed CALL fields}, "lines": [new transcript lines]}`."""

    call_id: str
    set: dict[str, Any]
    lines: list[dict[str, Any]] = field(default_factory=list)
    _data: bytes | None = field(default=None, repr=False, compare=False)

    def message(self) -> dict[str, Any]:
        """The JSON object sent to viewers."""
        return {"type": "update", "call_id": self.call_id, "set": self.set, "lines": self.lines}

    def data(self) -> bytes:
        """The message as a text frame's UTF-8 bytes, serialised once however many viewers get it."""
        if self._data is None:
            self._data = encode(self.message())
        return self._data

    def merged(self, later: Update | Removed) -> Update | Removed:
        """This update followed by a later delta of the same call, as one (for one frame, or a busy viewer)."""
        if isinstance(later, Removed):
            return later
        lines = self.lines + later.lines
        return Update(self.call_id, {**self.set, **later.set}, lines[-MAX_PENDING_LINES:])


@dataclass
class Removed:
    """`{"type": "removed", "call_id"}`: the call left the board."""

    call_id: str

    def message(self) -> dict[str, Any]:
        """The JSON object sent to viewers."""
        return {"type": "removed", "call_id": self.call_id}

    def data(self) -> bytes:
        """The message as a text frame's UTF-8 bytes."""
        return encode(self.message())

    def merged(self, later: Update | Removed) -> Update | Removed:
        """A removal followed by anything: the later message (a new call's first update has every field)."""
        return later


Delta = Update | Removed


def merge_into(pending: dict[str, Delta], delta: Delta) -> None:
    """Add a delta to waiting ones kept per call: merged with its call's delta if one waits."""
    waiting = pending.get(delta.call_id)
    pending[delta.call_id] = delta if waiting is None else waiting.merged(delta)


@dataclass
class _Call:
    view: dict[str, Any]  # the CALL object
    last_seen: float  # clock of the last event or heartbeat
    ended_at: float | None = None

    def export(self) -> dict[str, Any]:
        """The call as the backplane stores it (state.restore reads it back)."""
        return {"view": self.view, "last_seen": self.last_seen, "ended_at": self.ended_at}


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def board_metrics(data: dict[str, Any]) -> list[Any]:
    """What the board takes of a checked `metrics` event, rounded as CALL shows it: `[t, heat, [customer
    loudness_db, pace_wpm, hostility] or None, [agent pace_wpm] or None, talk_ratio]` (None for a role the
    event lacks: the board keeps what it had). The hub that accepts the event computes it once; the backplane
    carries it to every hub instead of the whole event."""
    roles = data["roles"]
    customer, agent = roles.get("customer"), roles.get("agent")
    return [data["t"], data.get("heat"),
            None if customer is None else [_r(customer.get("loudness_above_baseline_db"), 1),
                                           _r(customer.get("pace_wpm"), 0), _r(customer.get("hostility"), 2)],
            None if agent is None else [_r(agent.get("pace_wpm"), 0)],
            _r(data.get("talk_ratio"), 2)]


class FloorState:
    """Every call the hub knows, keyed by call id. `now` is the hub's wall clock (unix seconds)."""

    def __init__(
        self,
        *,
        stale_s: float = STALE_S,
        remove_after_s: float = REMOVE_AFTER_S,
        forget_stale_s: float = FORGET_STALE_S,
        tail: int = TRANSCRIPT_TAIL,
    ) -> None:
        self.stale_s = stale_s
        self.remove_after_s = remove_after_s
        self.forget_stale_s = forget_stale_s
        self.tail = tail
        self.calls: dict[str, _Call] = {}
        self.by_agent: dict[str, list[str]] = {}  # agent id -> its call ids on the board

    def owner(self, call_id: str) -> str | None:
        """The agent id the call was started with, or None for a call the hub does not know."""
        call = self.calls.get(call_id)
        return None if call is None else call.view["agent_id"]

    def has_room(self, agent_id: str, limit: int = MAX_CALLS_PER_AGENT) -> bool:
        """Whether a new call of this agent fits (fewer than `limit` calls, or an ended one to make room)."""
        mine = self.by_agent.get(agent_id, [])
        return len(mine) < limit or any(self.calls[c].ended_at is not None for c in mine)

    def make_room(self, agent_id: str, limit: int = MAX_CALLS_PER_AGENT) -> list[Removed] | None:
        """Before a new call of this agent: keep its calls on the board under `limit` by dropping its oldest
        ended ones. None when that is not enough (all its calls are live or stale)."""
        mine = self.by_agent.get(agent_id, [])
        removed: list[Removed] = []
        while len(mine) >= limit:
            oldest = min((c for c in mine if self.calls[c].ended_at is not None), default=None,
                         key=lambda c: self.calls[c].ended_at or 0.0)
            if oldest is None:
                return None
            self._drop(oldest)
            removed.append(Removed(oldest))
        return removed

    def _drop(self, call_id: str) -> None:
        call = self.calls.pop(call_id)
        mine = self.by_agent.get(call.view["agent_id"], [])
        if call_id in mine:
            mine.remove(call_id)
        if not mine:
            self.by_agent.pop(call.view["agent_id"], None)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every CALL, as a viewer gets them after its welcome."""
        return [c.view for c in self.calls.values()]

    def export(self, call_id: str) -> dict[str, Any] | None:
        """One call as the backplane stores it, or None when it left the board."""
        call = self.calls.get(call_id)
        return None if call is None else call.export()

    def restore(self, stored: dict[str, Any]) -> None:
        """Put back a call exported by a hub (this one before a restart, or another on the backplane)."""
        view = stored["view"]
        call_id, agent_id = view["call_id"], view["agent_id"]
        if call_id in self.calls:
            self._drop(call_id)
        self.calls[call_id] = _Call(view, float(stored["last_seen"]), stored.get("ended_at"))
        self.by_agent.setdefault(agent_id, []).append(call_id)

    def apply(self, event: Event, now: float) -> list[Delta]:
        """Fold one event into its call; the deltas for viewers (none when nothing they see changed).

        The caller has checked that the sender may publish for this call; an event of a call the hub
        does not know (no call.started yet) changes nothing.
        """
        if isinstance(event, CallStarted):
            return self._started(event, now)
        if isinstance(event, Metrics):
            return self.metrics(event.call_id, board_metrics(event.to_dict()), now)
        call = self.calls.get(event.call_id)
        if call is None:
            return []
        view = call.view
        changed = self._seen(call, event.t, now, ended=isinstance(event, CallEnded))
        lines: list[dict[str, Any]] = []
        if isinstance(event, TranscriptFinal):
            line = {"role": event.role, "text": event.text, "t": round(event.start, 1)}
            if line not in view["transcript"]:  # a line re-sent after a reconnect is already there
                lines.append(line)
                view["transcript"] = [*view["transcript"][-(self.tail - 1):], line] if self.tail > 1 else [line]
                if event.role == "customer":
                    changed["last_customer_line"] = event.text
        elif isinstance(event, Nudge):
            entry = {"id": event.id, "kind": event.kind, "severity": event.severity, "message": event.message,
                     "t": round(event.t, 1)}
            if entry not in view["nudges"]:
                kept = [n for n in view["nudges"] if n["id"] != event.id]
                changed["nudges"] = [*kept[-(MAX_NUDGES - 1):], entry]
        elif isinstance(event, NudgeCleared):
            kept = [n for n in view["nudges"] if n["id"] != event.id]
            if len(kept) != len(view["nudges"]):
                changed["nudges"] = kept
        elif isinstance(event, SupervisorRequested):
            entry = {"t": round(event.t, 1), "note": event.note}
            if entry not in view["supervisor_requests"]:
                changed["supervisor_requests"] = [*view["supervisor_requests"][-(MAX_REQUESTS - 1):], entry]
        elif isinstance(event, CallEnded):
            if call.ended_at is None:
                call.ended_at = now
                changed["status"] = "ended"
                changed["t"] = round(max(event.t, view["t"]), 3)
                if event.peak_heat is not None and view["heat"] is None:
                    changed["heat"] = event.peak_heat
        # partials, status and bookmarks only keep the call fresh: the board does not show them
        if not changed and not lines:
            return []
        view.update(changed)
        return [Update(event.call_id, changed, lines)]

    def _started(self, event: CallStarted, now: float) -> list[Delta]:
        call = self.calls.get(event.call_id)
        if call is not None:  # the publisher re-sends call.started after a reconnect
            call.last_seen = now
            if call.view["status"] == "stale":
                call.view["status"] = "live"
                return [Update(event.call_id, {"status": "live"})]
            return []
        room = self.make_room(event.agent_id)
        if room is None:  # the hub refused it at the door; a second hub on the backplane may have raced it
            return []
        view = {
            "call_id": event.call_id, "agent_id": event.agent_id, "status": "live", "started_at": round(now, 3),
            "t": round(event.t, 3), "heat": None,
            "customer": {"loudness_db": None, "pace_wpm": None, "hostility": None},
            "agent": {"pace_wpm": None, "talk_ratio": None},
            "nudges": [], "supervisor_requests": [], "last_customer_line": "", "transcript": [],
            "ack": None, "whispers": [],
        }
        self.calls[event.call_id] = _Call(view, now)
        self.by_agent.setdefault(event.agent_id, []).append(event.call_id)
        return [*room, Update(event.call_id, dict(view))]

    def acknowledge(self, call_id: str, by: str, now: float, echo: dict[str, Any] | None = None) -> list[Delta]:
        """A lead acknowledged the call's alerts: its supervisor requests so far and its call_supervisor nudges.

        The ack is part of the CALL, so every lead's board stops alerting for what was acknowledged, and a
        later request or nudge alerts again. `echo` is an ack the agent's publisher gives back after a
        reconnect (what it covered, as the hub told the agent): it counts only where the hub has no ack
        (a hub alone that restarted), never over one it has.
        """
        call = self.calls.get(call_id)
        if call is None:
            return []
        view = call.view
        if echo is not None:
            if view["ack"] is not None:
                return []
            ack = {"by": by, "at": round(float(echo["at"]), 3), "requests": min(echo["requests"], len(view["supervisor_requests"])),
                   "nudges": list(echo["nudges"])}
        else:
            ack = {"by": by, "at": round(now, 3), "requests": len(view["supervisor_requests"]),
                   "nudges": [n["id"] for n in view["nudges"] if n["kind"] == "call_supervisor"]}
        view["ack"] = ack
        return [Update(call_id, {"ack": ack})]

    def whisper(self, call_id: str, by: str, text: str, now: float) -> list[Delta]:
        """A lead's short text to the agent, kept with the call (the last few) for every lead to see."""
        call = self.calls.get(call_id)
        if call is None:
            return []
        entry = {"by": by, "text": text[:MAX_SHORT], "at": round(now, 3)}
        whispers = [*call.view["whispers"][-(MAX_WHISPERS - 1):], entry]
        call.view["whispers"] = whispers
        return [Update(call_id, {"whispers": whispers})]

    @staticmethod
    def _seen(call: _Call, t: float, now: float, *, ended: bool = False) -> dict[str, Any]:
        """An event of the call at call time `t`: fresh again; the fields that changed so far (status, t)."""
        call.last_seen = max(call.last_seen, now)
        view = call.view
        changed: dict[str, Any] = {}
        if view["status"] == "stale" and not ended:
            changed["status"] = "live"
        if t > view["t"] and call.ended_at is None:
            changed["t"] = round(t, 3)
        return changed

    def metrics(self, call_id: str, values: list[Any], now: float) -> list[Delta]:
        """Fold what the board takes of a `metrics` event (`board_metrics`: most of what agents send, so no
        dataclass and no second rounding on every hub)."""
        call = self.calls.get(call_id)
        if call is None:
            return []
        t, heat, customer, agent, talk_ratio = values
        view = call.view
        changed = self._seen(call, t, now)
        if heat is not None and heat != view["heat"]:
            changed["heat"] = heat
        if customer is not None:
            c = {"loudness_db": customer[0], "pace_wpm": customer[1], "hostility": customer[2]}
            if c != view["customer"]:
                changed["customer"] = c
        a = {"pace_wpm": agent[0] if agent is not None else view["agent"]["pace_wpm"], "talk_ratio": talk_ratio}
        if a != view["agent"]:
            changed["agent"] = a
        if not changed:
            return []
        view.update(changed)
        return [Update(call_id, changed)]

    def heartbeat(self, call_id: str, now: float) -> list[Delta]:
        """A heartbeat keeps the call fresh; a stale call comes back live."""
        call = self.calls.get(call_id)
        if call is None:
            return []
        call.last_seen = max(call.last_seen, now)
        if call.view["status"] == "stale":
            call.view["status"] = "live"
            return [Update(call_id, {"status": "live"})]
        return []

    def tick(self, now: float) -> list[Delta]:
        """Mark silent calls stale and drop calls long ended (or long stale); the deltas."""
        deltas: list[Delta] = []
        for call_id, call in list(self.calls.items()):
            status = call.view["status"]
            if call.ended_at is not None:
                if now - call.ended_at >= self.remove_after_s:
                    self._drop(call_id)
                    deltas.append(Removed(call_id))
            elif status == "live" and now - call.last_seen >= self.stale_s:
                call.view["status"] = "stale"
                deltas.append(Update(call_id, {"status": "stale"}))
            elif status == "stale" and now - call.last_seen >= self.forget_stale_s:
                self._drop(call_id)
                deltas.append(Removed(call_id))
        return deltas
