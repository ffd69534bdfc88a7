"""The viewer side of the floor protocol: keep every call's state from the hub's messages.

The pure part (`apply`, `rank`, `alerts`) keeps a dict of CALL objects (docs/FLOOR.md) from the
hub's `snapshot` / `batch` / `update` / `removed` messages and needs no socket, so it is tested on its
own. `FloorClient` is the asyncio part: connect, say hello (with the last position seen, so a reconnect
resumes), apply what arrives, reconnect with backoff, and say how the link is (the dashboard's status
line). The web wallboard (web/wallboard.js) implements the same rules in JavaScript.

Besides the hub's fields, `apply` keeps two of its own in each call: `nudge_log` (every nudge the
call has shown while we watched, active or not, for the drill-in) and `lines_total` (transcript lines
received so far, so a view can tell which lines are new after the kept tail was trimmed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import protocol as P
from .link import Backoff, TokenRefused, describe, say_hello, ws_url

log = logging.getLogger(__name__)

KEEP_LINES = 500       # transcript lines kept per call for the drill-in
KEEP_NUDGES = 100      # nudge history kept per call

Call = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# pure state keeping


def apply(calls: dict[str, Call], message: dict[str, Any]) -> None:
    """Apply one hub → viewer message to `calls` (call_id → CALL); other message types are ignored."""
    kind = message.get("type")
    if kind == "batch":
        for inner in message.get("messages") or []:
            if isinstance(inner, dict) and inner.get("type") != "batch":
                apply(calls, inner)
    elif kind == "snapshot":
        old = dict(calls)
        calls.clear()
        for call in message.get("calls") or []:
            if isinstance(call, dict) and isinstance(call.get("call_id"), str):
                call = dict(call)
                tail = [line for line in call.get("transcript") or [] if isinstance(line, dict)]
                # After a reconnect the snapshot replaces the board, but keep what we had already seen of a
                # call: its nudge history and its longer transcript, adding only the lines we missed.
                previous = old.get(call["call_id"])
                if previous:
                    kept = list(previous.get("transcript", []))
                    have = {_line_key(line) for line in kept}
                    missed = [line for line in tail if _line_key(line) not in have]
                    call["transcript"] = (kept + missed)[-KEEP_LINES:]
                    call["lines_total"] = previous.get("lines_total", 0) + len(missed)
                    call["nudge_log"] = list(previous.get("nudge_log", []))
                else:
                    call["transcript"] = tail
                    call["lines_total"] = len(tail)
                    call["nudge_log"] = []
                _log_nudges(call)
                calls[call["call_id"]] = call
    elif kind == "update":
        call_id = message.get("call_id")
        if not isinstance(call_id, str):
            return
        call = calls.get(call_id)
        if call is None:
            call = calls[call_id] = {"call_id": call_id, "transcript": [], "nudge_log": [], "lines_total": 0}
        changes = message.get("set") or {}
        for key, value in changes.items():
            if key in ("nudge_log", "lines_total"):
                continue  # ours, never the hub's
            call[key] = value
        if "transcript" in changes:
            call["transcript"] = list(changes["transcript"] or [])
            call["lines_total"] = max(call.get("lines_total", 0), len(call["transcript"]))
        lines = [line for line in message.get("lines") or [] if isinstance(line, dict)]
        if lines:
            call["transcript"].extend(lines)
            call["lines_total"] = call.get("lines_total", 0) + len(lines)
        del call["transcript"][:-KEEP_LINES]
        if "nudges" in changes:
            _log_nudges(call)
    elif kind == "removed":
        calls.pop(message.get("call_id"), None)  # type: ignore[arg-type]


def _line_key(line: dict[str, Any]) -> tuple[Any, Any, Any]:
    return (line.get("t"), line.get("role"), line.get("text"))


def _log_nudges(call: Call) -> None:
    log_ = call.setdefault("nudge_log", [])
    known = {n.get("id") for n in log_}
    for nudge in call.get("nudges") or []:
        if isinstance(nudge, dict) and nudge.get("id") not in known:
            log_.append(nudge)
    del log_[:-KEEP_NUDGES]


def heat_of(call: Call) -> int:
    """The call's heat 0..3 (0 until the hub has one)."""
    heat = call.get("heat")
    return heat if isinstance(heat, int) and not isinstance(heat, bool) else 0


def hostility_of(call: Call) -> float:
    """The customer's hostility 0..1 (0 until measured)."""
    value = (call.get("customer") or {}).get("hostility")
    return float(value) if isinstance(value, (int, float)) else 0.0


def duration_of(call: Call) -> float:
    """Call seconds so far: the latest call time the hub has seen."""
    value = call.get("t")
    return float(value) if isinstance(value, (int, float)) else 0.0


def has_alert(call: Call) -> bool:
    """Whether the call has an alert no lead has acknowledged (a supervisor request or call_supervisor)."""
    return bool(alerts({str(call.get("call_id")): call}))


def rank(calls: dict[str, Call]) -> list[Call]:
    """The board's order: live calls above ended ones; among them calls with an alert first, then heat (desc),
    customer hostility (desc) and duration (desc). The web wallboard ranks the same way."""
    return sorted(
        calls.values(),
        key=lambda c: (c.get("status") == "ended", not _alerting(c), -heat_of(c), -hostility_of(c), -duration_of(c),
                       str(c.get("call_id"))),
    )


def _alerting(call: Call) -> bool:
    ack = call.get("ack") if isinstance(call.get("ack"), dict) else {}
    acked = ack.get("requests") if isinstance(ack.get("requests"), int) else 0
    if len(call.get("supervisor_requests") or []) > acked:
        return True
    acked_nudges = ack.get("nudges") if isinstance(ack.get("nudges"), list) else []
    return any(isinstance(n, dict) and n.get("kind") == "call_supervisor" and n.get("id") not in acked_nudges
               for n in call.get("nudges") or [])


@dataclass(frozen=True)
class Alert:
    """Something the lead must act on: an agent asked for a supervisor, or the coach told them to."""

    call_id: str
    agent_id: str
    kind: str          # "supervisor_request" | "call_supervisor"
    t: float           # call time of the request or the nudge
    text: str          # the request's note or the nudge's message
    severity: str = "critical"

    @property
    def key(self) -> str:
        """Stable identity of this alert (for 'how long ago' and for acknowledging)."""
        return f"{self.call_id}:{self.kind}:{self.t:.3f}"

    @property
    def label(self) -> str:
        """What happened, in words."""
        return "asked for a supervisor" if self.kind == "supervisor_request" else "coach says: call the supervisor"


def alerts(calls: dict[str, Call]) -> list[Alert]:
    """Alerts in board order: supervisor requests and active `call_supervisor` nudges no lead acknowledged.

    A lead's acknowledgement is part of the call (`ack`: how many requests, which nudges), so it holds
    for every lead and survives a hub restart; a later request or nudge alerts again.
    """
    out: list[Alert] = []
    for call in rank(calls):
        call_id = str(call.get("call_id"))
        agent = str(call.get("agent_id") or "?")
        ack = call.get("ack") if isinstance(call.get("ack"), dict) else {}
        acked = ack.get("requests") if isinstance(ack.get("requests"), int) else 0
        acked_nudges = set(ack.get("nudges") or []) if isinstance(ack.get("nudges"), list) else set()
        requests = [r for r in call.get("supervisor_requests") or [] if isinstance(r, dict)]
        for request in requests[acked:]:
            out.append(Alert(call_id, agent, "supervisor_request", _num(request.get("t")), str(request.get("note") or "")))
        for nudge in call.get("nudges") or []:
            if isinstance(nudge, dict) and nudge.get("kind") == "call_supervisor" and nudge.get("id") not in acked_nudges:
                out.append(Alert(
                    call_id, agent, "call_supervisor", _num(nudge.get("t")), str(nudge.get("message") or ""),
                    str(nudge.get("severity") or "warn"),
                ))
    return out


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


class AlertClock:
    """When each alert began, by the wall clock, so a board can say "2 min ago".

    The first time an alert is seen it is dated from the call's start on the hub's clock plus its
    call time (right for live calls), but never later than now (a fast replay runs ahead of the clock).
    """

    def __init__(self) -> None:
        self._since: dict[str, float] = {}

    def since(self, alert: Alert, call: Call | None, now: float) -> float:
        """Wall-clock time the alert began."""
        if alert.key not in self._since:
            started = (call or {}).get("started_at")
            estimate = float(started) + alert.t if isinstance(started, (int, float)) else now
            self._since[alert.key] = min(now, estimate)
        return self._since[alert.key]

    def forget_except(self, keys: set[str]) -> None:
        """Drop alerts that are over, so the memo stays small."""
        for key in set(self._since) - keys:
            del self._since[key]


def ago(seconds: float) -> str:
    """'just now', '42 s ago', '3 min ago', '1 h 5 min ago'."""
    seconds = max(0.0, seconds)
    if seconds < 5:
        return "just now"
    if seconds < 90:
        return f"{int(seconds)} s ago"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min ago"
    return f"{minutes // 60} h {minutes % 60} min ago"


# ---------------------------------------------------------------------------------------------
# the link


@dataclass(frozen=True)
class Link:
    """How the dashboard's link to the hub is: connecting, connected, down (retrying) or refused."""

    state: str = "connecting"
    detail: str = ""
    retry_at: float | None = None  # monotonic time of the next attempt while down

    def text(self, now: float | None = None) -> str:
        """One line for a status bar."""
        if self.state == "connected":
            return "connected" if not self.detail else f"connected ({self.detail})"
        if self.state == "refused":
            return f"auth refused: {self.detail}" if self.detail else "auth refused"
        if self.state == "down":
            wait = ""
            if self.retry_at is not None:
                left = max(0, round(self.retry_at - (now if now is not None else time.monotonic())))
                wait = f" in {left} s"
            return f"hub down, retrying{wait} ({self.detail})" if self.detail else f"hub down, retrying{wait}"
        return "connecting"


async def viewer_hello(ws: Any, token: str, since: str | None = None) -> dict[str, Any]:
    """Say hello as a viewer; TokenRefused when the hub refuses it or it is an agent's token."""
    reply = await say_hello(ws, token, since=since)
    if reply.get("role") != "viewer":
        raise TokenRefused(f"this is {reply.get('agent_id') or 'an agent'}'s agent token; the floor needs a viewer token")
    return reply


async def probe(url: str, token: str, wait_s: float = 5.0) -> Link:
    """Try the token once: connected, refused (with the hub's reason) or down (with why)."""
    from websockets.asyncio.client import connect

    try:
        async with asyncio.timeout(wait_s):
            async with connect(ws_url(url), open_timeout=wait_s, close_timeout=1) as ws:
                await viewer_hello(ws, token)
    except TokenRefused as exc:
        return Link("refused", str(exc))
    except Exception as exc:  # refused, timed out, websockets' handshake errors: the hub is not usable now
        return Link("down", describe(exc, url))
    return Link("connected")


def _quiet(future: asyncio.Future[Any]) -> None:
    """Retrieve a dropped future's outcome so asyncio does not report it as never retrieved."""
    if not future.cancelled():
        future.exception()


class FloorClient:
    """A viewer of the hub: keeps `calls` current and `link` truthful; reconnects with backoff.

    `on_change()` is called (on the event loop) after every message and link change; a UI sets a
    flag there and redraws on its own timer, so a busy floor cannot flood the screen.
    """

    def __init__(
        self,
        url: str,
        token: str,
        on_change: Callable[[], None] | None = None,
        *,
        backoff_min: float = 0.5,
        backoff_max: float = 10.0,
    ) -> None:
        self.url = ws_url(url)
        self.token = token
        self.on_change = on_change or (lambda: None)
        self.on_message: Callable[[dict[str, Any]], None] = lambda message: None  # every message, as it came
        self.calls: dict[str, Call] = {}
        self.link = Link()
        self.backplane = ""  # the hub's backplane status ("ok", "down: ..."), "" when the hub is alone
        self.pos: str | None = None  # the last position the hub stamped: a reconnect resumes from it
        self.backoff = Backoff(backoff_min, backoff_max)
        self._ws: Any = None
        self._stopping = asyncio.Event()

    def _set_link(self, link: Link) -> None:
        self.link = link
        self.on_change()

    async def run(self) -> None:
        """Stay connected until `stop()` or the hub refuses the token."""
        from websockets.asyncio.client import connect

        while not self._stopping.is_set():
            self._set_link(Link("connecting"))
            try:
                async with connect(self.url, open_timeout=5, close_timeout=1, max_size=None) as ws:
                    await viewer_hello(ws, self.token, self.pos)
                    self._set_link(Link("connected"))
                    self.backoff.reset()
                    await self._receive(ws)
                    why = "the hub closed the link"
            except TokenRefused as exc:
                self._set_link(Link("refused", str(exc)))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the hub is down or went away: say so and try again
                why = describe(exc, self.url)
            if self._stopping.is_set():
                return
            wait = self.backoff.next()
            self._set_link(Link("down", why, time.monotonic() + wait))
            try:
                await asyncio.wait_for(self._stopping.wait(), wait)
            except TimeoutError:
                pass

    async def _receive(self, ws: Any) -> None:
        self._ws = ws
        stop = asyncio.ensure_future(self._stopping.wait())
        recv: asyncio.Future[Any] | None = None
        try:
            while True:
                recv = asyncio.ensure_future(ws.recv())
                done, _ = await asyncio.wait({recv, stop}, return_when=asyncio.FIRST_COMPLETED)
                if stop in done:
                    await ws.close()
                    return
                raw, recv = recv.result(), None
                try:
                    message = json.loads(raw)
                except ValueError:
                    log.warning("the hub sent something that is not JSON; ignored")
                    continue
                if isinstance(message, dict):
                    self._take(message)
                    self.on_message(message)
                    self.on_change()
        except asyncio.CancelledError:
            await ws.close()  # the app is closing: a normal goodbye rather than "internal error"
            raise
        finally:
            self._ws = None
            stop.cancel()
            if recv is not None:
                recv.cancel()
                recv.add_done_callback(_quiet)

    def _take(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "error":
            log.warning("hub: %s", message.get("message"))
        for inner in message.get("messages") or [] if kind == "batch" else [message]:
            if isinstance(inner, dict) and inner.get("type") == "status":
                self.backplane = str(inner.get("backplane") or "")
                self.link = Link("connected", "" if self.backplane in ("ok", "local") else f"backplane {self.backplane}")
        if kind in ("snapshot", "batch") and isinstance(message.get("pos"), str):
            self.pos = message["pos"]
        apply(self.calls, message)

    async def send(self, message: dict[str, Any]) -> bool:
        """Send a lead's message (an acknowledgement, a whisper) on the open link; False when it is down."""
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(P.dumps(message))
        except Exception:  # the link just went down; the status line says so
            return False
        return True

    def stop(self) -> None:
        """Close the link and end `run()`."""
        self._stopping.set()
