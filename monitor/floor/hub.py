"""`callmon hub`: the floor's websocket server. Agents publish their calls; team leads' dashboards subscribe.

One asyncio loop, one port: `/ws` is the websocket endpoint, any other GET serves the web wallboard's
static files from monitor/floor/web/. Every client says hello with a token first (tokens.py); an agent
publishes events of its own calls only, a viewer watches and may acknowledge alerts or whisper to an
agent. Every message is checked (validate.py) before the hub hands it to its backplane (backplane.py:
this hub alone, or Redis shared by several hubs); what the backplane hands back is folded into the
board (state.py) and sent to viewers as a snapshot, then frames of deltas (protocol in docs/FLOOR.md).

Why it stays cheap with thousands of agents and dozens of viewers: the hub's work per message does not
grow with the viewers. What the board changed is merged per call into the next frame; at most every
FRAME_S (the first change after a quiet FRAME_S at once) the frame is encoded once and the same bytes
are offered to every viewer, one `send()` each. A viewer still busy with its last frame keeps the next
one, and merges what comes after it per call, so a slow viewer costs at most one frame and one entry
per call, never a growing queue. A viewer that stops reading is dropped: the listening socket's
TCP_USER_TIMEOUT makes the kernel end a connection whose peer has not taken data for SLOW_VIEWER_S
(snapshot or not), and a viewer whose send has not finished by then gets nothing more.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import mimetypes
import re
import resource
import secrets
import signal
import socket
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..errors import BadInput
from ..events import TranscriptFinal, event_from_dict
from ..redact import redact_text
from . import protocol as P
from .backplane import Entry, LocalBackplane, RedisBackplane, pos_key, valid_pos
from .state import MAX_CALLS_PER_AGENT, Delta, FloorState, board_metrics, merge_into
from .tokens import Grant, TokenStore
from .validate import ID, MAX_SHORT, Invalid, check_event, loads, metrics_ok

log = logging.getLogger(__name__)
audit = logging.getLogger("callmon.audit")  # leads' acknowledgements and whispers: always logged
audit.setLevel(logging.INFO)

WEB_DIR = Path(__file__).parent / "web"
SLOW_VIEWER_S = P.SLOW_VIEWER_S
TICK_S = 0.5  # how often the hub looks for stale calls, stuck viewers and a changed token file
# How often a hub on Redis writes the calls it took entries for to their hashes. Each write serialises the whole
# CALL, and with thousands of agents nearly every call changes in any second; a hub that loads the board replays
# the stream from the oldest hash's position (at least backplane.REPLAY_S back), so the hashes may lag this much.
SAVE_S = 2.0
WRITE_S = 0.01  # a hub on Redis appends to the stream at most this often (what waits goes as one entry)
CATCH_UP_S = 5.0  # how long a resuming viewer waits for this hub to reach its position on the stream
OUTBOX_MAX = 20_000  # accepted messages waiting for the backplane; beyond this agents are told to slow down
OVERLOADED = "the hub is overloaded; message dropped"
_STATIC_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class HubSettings:
    """Everything `callmon hub` can set; the defaults are the protocol's."""

    tokens: str
    host: str = "127.0.0.1"
    port: int = P.DEFAULT_PORT
    cert: str | None = None
    key: str | None = None
    stale_s: float = P.STALE_S
    remove_after_s: float = P.REMOVE_AFTER_S
    forget_stale_s: float = P.FORGET_STALE_S
    hello_timeout_s: float = P.HELLO_TIMEOUT_S
    max_message: int = P.MAX_MESSAGE
    rate_per_s: float = P.RATE_PER_S
    rate_burst: float = P.RATE_BURST
    frame_s: float = P.FRAME_S
    web_dir: Path = field(default=WEB_DIR)
    redis: str | None = None  # redis://HOST:PORT/DB: join that backplane; None: this hub alone


class _Viewer:
    """One subscribed dashboard: its snapshot, then the hub's frames, and the task that sends them.

    A viewer that keeps up gets the very bytes every other viewer gets (`offer`: one frame, encoded once per
    hub). One that is still sending when the next frame comes keeps that frame's deltas merged per call in
    `pending` instead, and gets them as a frame of its own when its send finishes: a slow viewer costs the
    hub at most one frame and one entry per call, never a growing queue.
    """

    def __init__(self, hub: Hub, ws: ServerConnection, grant: Grant) -> None:
        self.hub = hub
        self.ws = ws
        self.grant = grant
        self.name = grant.name
        self.first: bytes | None = None  # the snapshot, sent before anything else
        self.frame: bytes | None = None  # the next shared frame to send as it is
        self.frame_pos: str | None = None
        self.pending: dict[str, Delta] = {}  # deltas of frames that came while it was busy, merged per call
        self.pending_pos: str | None = None
        self.notices: list[bytes] = []  # status messages, sent with the next frame
        self.wake = asyncio.Event()
        self.busy_since: float | None = None  # loop time a send began that has not finished
        self.pos: str | None = None  # every entry up to here has reached this viewer
        self.lead_bucket = P.TokenBucket(P.LEAD_PER_S, P.LEAD_BURST)

    def offer(self, frame: bytes, deltas: list[Delta], pos: str | None) -> None:
        """The hub's next frame: kept to be sent as it is, or (busy with an earlier one) merged into `pending`."""
        if self.frame is None and not self.pending:
            self.frame, self.frame_pos = frame, pos
        else:
            for delta in deltas:
                merge_into(self.pending, delta)
            self.pending_pos = pos
        self.wake.set()

    def restart(self, snapshot: bytes, pos: str | None) -> None:
        """A fresh snapshot replaces whatever was waiting (the hub reloaded its board)."""
        self.first, self.frame, self.pos = snapshot, None, pos
        self.pending.clear()
        self.wake.set()

    def notice(self, message: dict[str, Any]) -> None:
        """Queue a status message for the next frame."""
        self.notices.append(P.encode(message))
        self.wake.set()

    async def _send(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        self.busy_since = loop.time()
        try:
            await self.ws.send(data, text=True)
        except ConnectionClosed:
            if loop.time() - self.busy_since > 1.0:  # the kernel gave up on a peer that took nothing
                log.warning("viewer %s stopped reading; dropped", self.name)
            raise
        self.busy_since = None

    async def run(self) -> None:
        """The snapshot, then frames as the hub makes them, until the connection closes."""
        while True:
            if self.first is not None:  # the first snapshot, or a fresh one after the hub reloaded its board
                first, self.first = self.first, None
                await self._send(first)
                continue
            if self.notices:
                notices, self.notices = self.notices, []
                await self._send(P.batch_frame(notices, self.pos))
            elif self.frame is not None:  # older than anything in pending
                frame, self.frame = self.frame, None
                self.pos = self.frame_pos
                await self._send(frame)
            elif self.pending:
                pending, self.pending = self.pending, {}
                self.pos = self.pending_pos
                await self._send(P.batch_frame([d.data() for d in pending.values()], self.pos))
            else:
                self.wake.clear()
                await self.wake.wait()


class _AgentLink:
    """One agent connection: its grant and its rate limit."""

    def __init__(self, ws: ServerConnection, grant: Grant, settings: HubSettings) -> None:
        self.ws = ws
        self.grant = grant
        self.agent_id = grant.agent_id or ""
        self.bucket = P.TokenBucket(settings.rate_per_s, settings.rate_burst)


class Hub:
    """The server: authentication, validation, the backplane, the floor state, and fan-out to viewers."""

    def __init__(self, settings: HubSettings, tokens: TokenStore, ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.tokens = tokens
        self.ssl_context = ssl_context
        self.id = secrets.token_hex(4)  # marks this hub's entries on a shared backplane
        self.state = FloorState(
            stale_s=settings.stale_s, remove_after_s=settings.remove_after_s, forget_stale_s=settings.forget_stale_s,
        )
        if settings.redis:
            self.backplane: LocalBackplane | RedisBackplane = RedisBackplane(
                settings.redis, remove_after_s=settings.remove_after_s, forget_stale_s=settings.forget_stale_s)
        else:
            self.backplane = LocalBackplane()
        self.viewers: set[_Viewer] = set()
        self.deltas: dict[str, Delta] = {}  # what the board changed since the last frame, merged per call
        self.frame_due: asyncio.TimerHandle | None = None
        self.frame_at = 0.0  # loop time of the last frame
        self.agents: dict[str, set[_AgentLink]] = {}  # agent id -> its links to this hub
        self.links: dict[ServerConnection, Grant] = {}  # every welcomed client, for revocation
        self.pos: str | None = None  # the last backplane position folded
        self.dirty: dict[str, str] = {}  # calls this hub took entries for since the last flush -> position
        self.claims: dict[str, str] = {}  # call id -> agent id: call.started accepted here, not yet folded back
        self.outbox: list[dict[str, Any]] = []
        self.outbox_ready = asyncio.Event()
        self.moved = asyncio.Event()  # set when the board folds a new position (resuming viewers wait on it)
        self.reload_tokens = False  # set by SIGHUP
        self.was_down = False  # the backplane was down since it was last ok
        self.reloading = False  # the board is being reloaded from the backplane
        self.port: int | None = None

    # --- serving ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, ready: Callable[[int], None] | None = None) -> None:
        """Serve until `stop` is set; `ready(port)` once listening (the real port when 0 was asked)."""
        s = self.settings
        await self.backplane.start(self._fold, self._reset, self._backplane_status)
        sock = _listen(s.host, s.port)
        async with serve(
            self._handler, sock=sock, process_request=self._http, ssl=self.ssl_context,
            max_size=s.max_message, compression=None,  # loopback/LAN: deflate would cost more CPU than it saves
            open_timeout=10, close_timeout=2,
        ) as server:
            self.port = server.sockets[0].getsockname()[1]
            if ready is not None:
                ready(self.port)
            tasks = [asyncio.create_task(self._tick_loop()), asyncio.create_task(self._write_loop())]
            try:
                await stop.wait()
            finally:
                for task in tasks:
                    task.cancel()
                await self.backplane.stop()

    async def _tick_loop(self) -> None:
        """Stale and removed calls, stuck viewers, the token file, and (on Redis) the calls' hashes."""
        loop = asyncio.get_running_loop()
        period = max(0.05, min(TICK_S, self.settings.stale_s / 4))
        next_tokens = next_save = 0.0
        while True:
            await asyncio.sleep(period)
            for delta in self.state.tick(time.time()):
                self._broadcast(delta)
            now = loop.time()
            for viewer in list(self.viewers):
                if viewer.busy_since is not None and now - viewer.busy_since > SLOW_VIEWER_S:
                    log.warning("viewer %s stopped reading; dropped", viewer.name)
                    self.viewers.discard(viewer)
                    viewer.busy_since = None
                    viewer.wake.set()
            if self.reload_tokens or now >= next_tokens:
                self._check_tokens(force=self.reload_tokens)
                self.reload_tokens = False
                next_tokens = now + P.TOKEN_CHECK_S
            if (self.dirty and now >= next_save and isinstance(self.backplane, RedisBackplane)
                    and self.backplane.status == "ok"):
                next_save = now + SAVE_S
                dirty, self.dirty = self.dirty, {}
                try:
                    await self.backplane.save({c: (self.state.export(c), pos) for c, pos in dirty.items()})
                except Exception as exc:  # Redis went away: the reader says so; keep them for the next flush
                    log.debug("saving calls failed: %s", exc)
                    self.dirty = {**dirty, **self.dirty}

    def _check_tokens(self, force: bool) -> None:
        """Re-read the token file if it changed (always on SIGHUP) and close links whose token is gone or expired."""
        if self.tokens.reload(force):
            log.info("token file %s re-read: %d token(s)", self.tokens.path, len(self.tokens.grants))
        now = time.time()
        for ws, grant in list(self.links.items()):
            if not self.tokens.still_valid(grant, now):
                why = "token expired" if grant in self.tokens.grants else "token revoked"
                del self.links[ws]
                log.warning("%s %s closed: %s", grant.role, grant.name, why)
                _spawn(ws.close(P.POLICY_VIOLATION, why))

    def _broadcast(self, delta: Delta) -> None:
        """Add a change of the board to the next frame (the first after a quiet FRAME_S goes at once)."""
        merge_into(self.deltas, delta)
        if self.frame_due is None:
            loop = asyncio.get_running_loop()
            self.frame_due = loop.call_at(max(loop.time(), self.frame_at + self.settings.frame_s), self._flush)

    def _flush(self) -> None:
        """One frame of every change since the last, encoded once, offered to every viewer as the same bytes."""
        if self.frame_due is not None:
            self.frame_due.cancel()
            self.frame_due = None
        self.frame_at = asyncio.get_running_loop().time()
        if not self.deltas:
            return
        deltas = list(self.deltas.values())
        self.deltas = {}
        if not self.viewers:
            return
        frame = P.batch_frame([d.data() for d in deltas], self.pos)
        for viewer in self.viewers:
            viewer.offer(frame, deltas, self.pos)

    # --- the backplane ------------------------------------------------------------------------

    def _submit(self, item: dict[str, Any]) -> None:
        """Hand an accepted message to the backplane (in order, batched by the writer)."""
        self.outbox.append(item)
        self.outbox_ready.set()

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        # On Redis, what arrived within WRITE_S goes as one stream entry: each entry costs every hub a round trip
        # and a read, so hundreds of tiny ones a second would cost more than the messages in them.
        pace = WRITE_S if isinstance(self.backplane, RedisBackplane) else 0.0
        written = 0.0
        while True:
            await self.outbox_ready.wait()
            if pace:
                await asyncio.sleep(max(0.0, written + pace - loop.time()))
                written = loop.time()
            self.outbox_ready.clear()
            while self.outbox:
                # All that waits, in one round trip: under load the writer runs once per turn of the loop, while the
                # agents' links deliver a turn's worth of messages each time; a writer taking a slice per round trip
                # fell behind and the hub dropped messages as overloaded.
                items, self.outbox = self.outbox, []
                if self.backplane.status in ("ok", "local"):
                    try:
                        await self.backplane.publish(items)
                        continue
                    except Exception as exc:  # the reader says so in the log; the status changes at once
                        if isinstance(self.backplane, RedisBackplane):
                            self.backplane.down(exc, quiet=True)
                # Redis is down: serve what we have and fold our own agents here; they re-send once it is back.
                for item in items:
                    self._fold(Entry("", time.time(), item))

    def _backplane_status(self, status: str) -> None:
        if status == "ok" and self.was_down:
            # What our agents sent meanwhile was folded here only: have them send their calls again, into Redis.
            for links in self.agents.values():
                for link in links:
                    _spawn(link.ws.send(P.dumps(P.resync())))
        self.was_down = status.startswith("down")
        fresh = None
        if status == "ok" and self.reloading:
            self.reloading = False
            self.deltas.clear()  # the fresh snapshot holds them
            fresh = P.encode(P.snapshot(self.state.snapshot(), self.pos))
        for viewer in self.viewers:
            if fresh is not None:
                viewer.restart(fresh, self.pos)
            viewer.notice(P.status(status))

    def _reset(self) -> None:
        """The backplane came back without this hub's position: start the board over from it, give every viewer
        a fresh snapshot once it is loaded, and ask our agents to send their calls again (Redis may have come
        back empty)."""
        self.state = FloorState(
            stale_s=self.settings.stale_s, remove_after_s=self.settings.remove_after_s,
            forget_stale_s=self.settings.forget_stale_s,
        )
        self.pos = None
        for links in self.agents.values():
            for link in links:
                _spawn(link.ws.send(P.dumps(P.resync())))
        self.reloading = True  # once loaded, every viewer gets a fresh snapshot (_backplane_status)

    def _fold(self, entry: Entry) -> None:
        """One backplane entry into the board: deltas to viewers, a lead's message to the agent if it is here."""
        try:
            self._fold_one(entry)
        except Exception as exc:  # a bug must cost one entry, not the reader or the writer task
            log.warning("skipped backplane entry %s: %s: %s", entry.pos or "(local)", type(exc).__name__, exc)

    def _fold_one(self, entry: Entry) -> None:
        data = entry.data
        kind = data.get("k")
        call_id = data.get("c")
        deltas: list[Delta] = []
        if kind == "r":
            self.state.restore(data["call"])
            return
        if kind == "m" and isinstance(call_id, str):  # a metrics event, as the board takes it (state.board_metrics)
            deltas = self.state.metrics(call_id, data["v"], entry.at)
        elif kind == "e":
            try:
                event = event_from_dict(data["m"])
            except (ValueError, KeyError, TypeError):
                log.debug("skipped an entry that is not an event: %s", str(data)[:200])
                return
            deltas = self.state.apply(event, entry.at)
            if isinstance(call_id, str):
                self.claims.pop(call_id, None)  # the board knows the call now
        elif kind == "b" and isinstance(call_id, str):
            deltas = self.state.heartbeat(call_id, entry.at)
        elif kind == "l" and isinstance(call_id, str):
            by, text, echo = str(data.get("by")), str(data.get("text") or ""), data.get("echo")
            if data.get("kind") == "ack":
                deltas = self.state.acknowledge(call_id, by, entry.at, echo)
            else:
                deltas = self.state.whisper(call_id, by, text, entry.at)
            owner = self.state.owner(call_id)
            if deltas and owner is not None and echo is None:  # an echo came from the agent: it has it
                ack = deltas[-1].set.get("ack") if data.get("kind") == "ack" else None  # type: ignore[union-attr]
                message = P.dumps(P.lead(call_id, str(data.get("kind")), by, text, ack))
                for link in self.agents.get(owner, ()):
                    _spawn(link.ws.send(message))
        if entry.pos:
            self.pos = entry.pos
            self.moved.set()
            if data.get("h") == self.id and isinstance(call_id, str):
                self.dirty[call_id] = entry.pos
        for delta in deltas:
            self._broadcast(delta)

    # --- plain HTTP: the wallboard ----------------------------------------------------------

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        """Let `/ws` through to the websocket handshake; serve the wallboard's files for any other GET."""
        path = request.path.split("?", 1)[0]
        if path == P.WS_PATH:
            return None
        name = "index.html" if path == "/" else path[1:]
        file = self.settings.web_dir / name
        if not _STATIC_NAME.fullmatch(name) or not file.is_file():
            return connection.respond(404, "not found\n")
        body = file.read_bytes()
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
            ctype += "; charset=utf-8"
        headers = Headers([
            ("Content-Type", ctype), ("Content-Length", str(len(body))), ("Cache-Control", "no-cache"),
            ("X-Content-Type-Options", "nosniff"), ("Connection", "close"),
        ])
        return Response(200, "OK", headers, body)

    # --- websocket clients ------------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        hello = await self._hello(ws)
        if hello is None:
            return
        grant, since = hello
        self.links[ws] = grant
        try:
            if grant.role == "viewer":
                await self._serve_viewer(ws, grant, since)
            else:
                await self._serve_agent(ws, grant)
        finally:
            self.links.pop(ws, None)

    async def _hello(self, ws: ServerConnection) -> tuple[Grant, str | None] | None:
        """The client's token, checked; (the grant, the viewer's `since`), or None after closing with 1008."""
        try:
            async with asyncio.timeout(self.settings.hello_timeout_s):
                raw = await ws.recv()
        except TimeoutError:
            await ws.close(P.POLICY_VIOLATION, f"no hello within {self.settings.hello_timeout_s:g} s")
            return None
        except ConnectionClosed:
            return None
        try:
            msg = loads(raw)
        except Invalid:
            msg = None
        if not isinstance(msg, dict) or msg.get("type") != "hello":
            await ws.close(P.POLICY_VIOLATION, 'the first message must be {"type": "hello", "token": ...}')
            return None
        token = msg.get("token")
        grant = self.tokens.check(token) if isinstance(token, str) and len(token) <= 200 else None
        if grant is None:
            log.warning("rejected a client from %s: bad, revoked or expired token", _peer(ws))
            await ws.close(P.POLICY_VIOLATION, "bad token")
            return None
        try:
            await ws.send(P.dumps(P.welcome(grant.role, grant.agent_id)))
        except ConnectionClosed:
            return None
        log.info("%s %s connected from %s", grant.role, grant.name, _peer(ws))
        since = msg.get("since")
        return grant, since if valid_pos(since) else None

    async def _serve_agent(self, ws: ServerConnection, grant: Grant) -> None:
        """Events and heartbeats from one agent's publisher, each checked before it goes to the backplane."""
        link = _AgentLink(ws, grant, self.settings)
        self.agents.setdefault(link.agent_id, set()).add(link)
        mistakes = P.TokenBucket(P.MISTAKES_PER_S, P.MISTAKES_BURST)  # bad messages are answered, not without end
        loop = asyncio.get_running_loop()
        try:
            async for raw in ws:
                now = loop.time()
                if not link.bucket.take(now):
                    await self._close(ws, f"agent {link.agent_id}", "rate limit")
                    return
                problem, fatal = self._agent_message(link, raw)
                if problem is None:
                    continue
                await ws.send(P.dumps(P.error(problem)))
                if problem is OVERLOADED:
                    continue  # the hub's trouble, not a mistake of the agent's: never a reason to close its link
                if fatal or not mistakes.take(now):
                    await self._close(ws, f"agent {link.agent_id}", problem if fatal else "too many bad messages")
                    return
        except ConnectionClosed:
            pass
        finally:
            mine = self.agents.get(link.agent_id)
            if mine is not None:
                mine.discard(link)
                if not mine:
                    del self.agents[link.agent_id]

    async def _close(self, ws: ServerConnection, who: str, reason: str) -> None:
        log.warning("%s closed: %s", who, reason)
        await ws.close(P.POLICY_VIOLATION, _close_reason(reason))

    def _agent_message(self, link: _AgentLink, raw: str | bytes) -> tuple[str | None, bool]:
        """Check one agent message and submit it; (what was wrong, whether it ends the link), or (None, False)."""
        try:
            data = loads(raw)
        except Invalid as exc:  # not JSON, NaN or Infinity, nested too deeply
            return str(exc), False
        try:
            if type(data) is dict and data.get("type") == "metrics" and metrics_ok(data):  # most messages: quickly
                call_id = data["call_id"]
                item: dict[str, Any] = {"k": "m", "c": call_id, "v": board_metrics(data)}
            elif isinstance(data, dict) and data.get("type") == "lead":
                item = _ack_echo(data)
                call_id = item["c"]
            elif isinstance(data, dict) and data.get("type") == "heartbeat":
                call_id = data.get("call_id")
                if not isinstance(call_id, str) or not ID.fullmatch(call_id) or set(data) != {"type", "call_id"}:
                    raise Invalid("a heartbeat is {type: heartbeat, call_id}")
                item = {"k": "b", "c": call_id}
            else:
                check_event(data)
                event = event_from_dict(data)
                call_id = event.call_id
                item = {"k": "e", "c": call_id, "m": data}
        except ValueError as exc:  # Invalid, or a field event_from_dict does not know
            return f"invalid event: {exc}", False
        agent_id = link.agent_id
        # The board learns of a call only when its call.started comes back from the backplane; until then the
        # claim made here says whose it is, so the call's next events (and another agent's) are judged at once.
        owner = self.state.owner(call_id) or self.claims.get(call_id)
        if data.get("type") == "call.started":
            if data["agent_id"] != agent_id:
                return f"agent {agent_id} may not publish a call of agent {data['agent_id']!r}", True
            if owner is None:
                if not self.state.has_room(agent_id, MAX_CALLS_PER_AGENT):
                    return f"agent {agent_id} has {MAX_CALLS_PER_AGENT} calls that have not ended; end one first", False
                owner = self.claims[call_id] = agent_id
        elif owner is None:
            what = "heartbeat for" if item["k"] == "b" else "unknown call"
            return f"{what} {call_id}: send its call.started first" if what == "unknown call" else \
                f"heartbeat for unknown call {call_id!r}", False
        if owner != agent_id:
            return f"call {call_id} is not agent {agent_id}'s", True
        if len(self.outbox) >= OUTBOX_MAX:
            return OVERLOADED, False
        if item["k"] == "l":
            audit.info("agent %s gave back the acknowledgement by %s of call %s", agent_id, item["by"], call_id)
        item["h"] = self.id
        self._submit(item)
        return None, False

    async def _serve_viewer(self, ws: ServerConnection, grant: Grant, since: str | None) -> None:
        """A snapshot (or a resume), then deltas from the viewer's sender task; acks and whispers in."""
        if since is not None and self.pos is not None:
            # A viewer coming from a hub further along the stream: let this one catch up first, or the board it
            # gets would go back in time.
            loop = asyncio.get_running_loop()
            end = loop.time() + CATCH_UP_S
            while self.pos is not None and pos_key(self.pos) < pos_key(since) and loop.time() < end:
                self.moved.clear()
                try:
                    async with asyncio.timeout(max(0.0, end - loop.time())):
                        await self.moved.wait()
                except TimeoutError:
                    break
        viewer = _Viewer(self, ws, grant)
        self._flush()  # what was folded so far goes to the others: this one gets it in its snapshot
        self.viewers.add(viewer)  # from here on it gets every frame after the snapshot it is about to receive
        upto = self.pos
        resumed = None
        if since is not None and upto is not None:
            try:
                resumed = await self.backplane.since(since, upto)
            except Exception as exc:  # Redis went away meanwhile: a fresh snapshot from what this hub has
                log.debug("resume from %s failed: %s", since, exc)
        if resumed is None:
            self._flush()
            viewer.frame = None  # the snapshot below holds all of it
            viewer.pending.clear()
            calls = self.state.snapshot()
            viewer.first = P.encode(P.snapshot(calls, self.pos))
            viewer.pos = self.pos
        else:
            lines: dict[str, list[dict[str, Any]]] = {}
            for entry in resumed:
                if entry.data.get("k") == "e" and entry.data["m"].get("type") == TranscriptFinal.type:
                    m = entry.data["m"]
                    lines.setdefault(m["call_id"], []).append({"role": m["role"], "text": m["text"], "t": round(m["start"], 1)})
            calls = [{**view, "transcript": lines.get(view["call_id"], [])[-P.TRANSCRIPT_TAIL * 5:]}
                     for view in self.state.snapshot()]
            viewer.first = P.encode(P.snapshot(calls, upto, resumed=True))
            viewer.pos = upto
        if self.backplane.status != "local":
            viewer.notice(P.status(self.backplane.status))
        sender = asyncio.create_task(viewer.run())
        reader = asyncio.create_task(self._viewer_reader(viewer))
        try:
            while viewer in self.viewers and not sender.done() and not reader.done():
                await asyncio.wait({sender, reader}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.viewers.discard(viewer)
            for task in (sender, reader):
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, ConnectionClosed):
                    pass

    async def _viewer_reader(self, viewer: _Viewer) -> None:
        """What a lead sends: acknowledgements and whispers; a viewer that publishes is closed."""
        ws, grant = viewer.ws, viewer.grant
        loop = asyncio.get_running_loop()
        bucket = P.TokenBucket(self.settings.rate_per_s, self.settings.rate_burst)
        mistakes = P.TokenBucket(P.MISTAKES_PER_S, P.MISTAKES_BURST)
        async for raw in ws:
            now = loop.time()
            if not bucket.take(now):
                await self._close(ws, f"viewer {grant.name}", "rate limit")
                return
            try:
                data = loads(raw)
            except Invalid as exc:
                data, problem = None, str(exc)
            else:
                problem = None
            if isinstance(data, dict) and (data.get("type") == "heartbeat" or "schema" in data):
                await ws.send(P.dumps(P.error("a viewer may not publish")))
                await self._close(ws, f"viewer {grant.name}", "a viewer may not publish")
                return
            if problem is None:
                problem = self._lead_message(viewer, data, now)
            if problem is not None:
                await ws.send(P.dumps(P.error(problem)))
                if not mistakes.take(now):
                    await self._close(ws, f"viewer {grant.name}", "too many bad messages")
                    return

    def _lead_message(self, viewer: _Viewer, data: Any, now: float) -> str | None:
        """An acknowledgement or a whisper from a lead, checked, audited and submitted; else what is wrong."""
        if not isinstance(data, dict) or data.get("type") not in ("ack", "whisper"):
            return 'a viewer sends only {"type": "ack", "call_id"} or {"type": "whisper", "call_id", "text"}'
        call_id = data.get("call_id")
        if not isinstance(call_id, str) or self.state.owner(call_id) is None:
            return f"no call {str(call_id)[:64]!r} on the board"
        text = ""
        if data["type"] == "whisper":
            raw = data.get("text")
            if not isinstance(raw, str) or not raw.strip():
                return "a whisper needs text"
            if len(raw) > MAX_SHORT:
                return f"a whisper is at most {MAX_SHORT} characters"
            text = redact_text(_CONTROL.sub(" ", raw).strip())
        if not viewer.lead_bucket.take(now):
            return "too many acknowledgements and whispers; wait a moment"
        owner = self.state.owner(call_id)
        if data["type"] == "ack":
            audit.info("viewer %s acknowledged the alerts of %s's call %s", viewer.name, owner, call_id)
        else:
            audit.info("viewer %s whispered to %s's call %s: %s", viewer.name, owner, call_id, text)
        self._submit({"k": "l", "c": call_id, "kind": data["type"], "by": viewer.name, "text": text, "h": self.id})
        return None


def _ack_echo(data: dict[str, Any]) -> dict[str, Any]:
    """An acknowledgement an agent's publisher gives back after a reconnect, checked; the backplane item."""
    ack = data.get("ack")
    call_id, by = data.get("call_id"), data.get("by")
    if (data.get("kind") != "ack" or not isinstance(call_id, str) or not ID.fullmatch(call_id)
            or not isinstance(by, str) or not ID.fullmatch(by) or not isinstance(ack, dict)):
        raise Invalid('an agent gives back only {"type": "lead", "kind": "ack", "call_id", "by", "ack"}')
    requests, nudges, at = ack.get("requests"), ack.get("nudges"), ack.get("at")
    if (isinstance(requests, bool) or not isinstance(requests, int) or not 0 <= requests <= 1000
            or not isinstance(nudges, list) or len(nudges) > 20
            or not all(isinstance(n, str) and ID.fullmatch(n) for n in nudges)
            or isinstance(at, bool) or not isinstance(at, (int, float)) or not 0 <= at < 1e11):
        raise Invalid("the acknowledgement given back is malformed")
    return {"k": "l", "c": call_id, "kind": "ack", "by": by, "text": "",
            "echo": {"requests": requests, "nudges": nudges, "at": at}}


_tasks: set[asyncio.Task[Any]] = set()


def _spawn(coro: Any) -> None:
    """Run a send or close the caller cannot await; its failure (the peer went away) is not an error."""
    task = asyncio.ensure_future(coro)
    _tasks.add(task)
    task.add_done_callback(_done)


def _done(task: asyncio.Task[Any]) -> None:
    _tasks.discard(task)
    if not task.cancelled() and task.exception() is not None and not isinstance(task.exception(), ConnectionClosed):
        log.debug("a send failed: %s", task.exception())


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, with TCP_USER_TIMEOUT: the kernel ends any connection whose peer has not taken
    what the hub sent for SLOW_VIEWER_S, so a viewer that stops reading mid-snapshot holds no memory."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(SLOW_VIEWER_S * 800))
        sock.bind(addr)
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _close_reason(text: str) -> str:
    """A close frame's reason is at most 123 bytes of UTF-8."""
    data = text.encode()
    return text if len(data) <= 123 else data[:120].decode(errors="ignore") + "..."


def _peer(ws: ServerConnection) -> str:
    try:
        host, port = ws.remote_address[:2]
        return f"{host}:{port}"
    except (TypeError, ValueError):
        return "?"


def _ssl_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if not cert and not key:
        return None
    if not (cert and key):
        raise BadInput("TLS needs both --cert FILE and --key FILE (PEM)")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise BadInput(f"cannot load the TLS certificate {cert} and key {key}: {exc}") from None
    return ctx


def _raise_fd_limit() -> None:
    """One file descriptor per client: lift the soft limit to the hard one (thousands of agents)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536, hard))
        except (ValueError, OSError):
            pass


def _tune_gc() -> None:
    """Python's cycle collector, tuned for a hub with thousands of links.

    With the default threshold (700 new container objects) the collector ran a thousand times in 20 s under
    2,000 agents, promoting every message in flight to older generations, whose full collections (hundreds of
    thousands of objects: each link has its own) took a fifth of the hub's CPU and held its loop for up to
    0.37 s at a time. Most of what the hub makes is freed by reference counting at once, so it can wait for
    100,000 before looking for cycles; and what was loaded at start (modules, the token file) is left out of
    every collection (gc.freeze)."""
    gc.freeze()
    gc.set_threshold(100_000, 10, 10)


def run_hub(settings: HubSettings) -> int:
    """`callmon hub`: serve until Ctrl-C or SIGTERM; the exit code."""
    tokens = TokenStore(settings.tokens)
    ctx = _ssl_context(settings.cert, settings.key)
    agents = sum(1 for g in tokens.grants if g.role == "agent")
    viewers = len(tokens.grants) - agents
    if not tokens.grants:
        print(f"callmon hub: warning: {settings.tokens} holds no tokens; add one with 'callmon hub token'", file=sys.stderr)
    _raise_fd_limit()
    _tune_gc()
    hub = Hub(settings, tokens, ctx)
    ws_scheme, http_scheme = ("wss", "https") if ctx else ("ws", "http")

    listening = False

    def ready(port: int) -> None:
        nonlocal listening
        listening = True
        where = f"{settings.host}:{port}"
        backplane = f"on redis {settings.redis}" if settings.redis else "alone (no --redis)"
        print(
            f"callmon hub: listening on {ws_scheme}://{where}{P.WS_PATH}, wallboard at {http_scheme}://{where}/ "
            f"({agents} agent and {viewers} viewer tokens; {backplane})",
            file=sys.stderr, flush=True,
        )

    def hangup() -> None:
        hub.reload_tokens = True

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, hangup)
        await hub.run(stop, ready)

    try:
        asyncio.run(main())
    except OSError as exc:
        if listening:
            raise
        raise BadInput(
            f"cannot listen on {settings.host}:{settings.port} ({exc.strerror or exc}); choose another --port or --host"
        ) from None
    print("callmon hub: stopped", file=sys.stderr)
    return 0

