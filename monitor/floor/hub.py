"""`callmon hub`: the floor's websocket server. Agents publish their calls; team leads' dashboards subscribe.

One asyncio loop, one port: `/ws` is the websocket endpoint, any other GET serves the web wallboard's
static files from monitor/floor/web/. Every client says hello with a token first (tokens.py); an agent
publishes events of its own calls only, a viewer only listens. The hub folds events into the floor's
state (state.py) and sends each viewer a snapshot, then coalesced deltas (protocol in docs/FLOOR.md).

Why it stays cheap with thousands of agents: each delta is serialised once and the same text goes to
every viewer; a viewer's pending deltas are kept per call (merged inside the 100 ms window), so a slow
viewer costs at most one entry per call, never a growing queue, and one that stops reading is dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import re
import resource
import signal
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
from websockets.frames import Opcode
from websockets.http11 import Request, Response

from ..errors import BadInput
from ..events import CallStarted, event_from_dict
from . import protocol as P
from .state import Delta, FloorState, Removed
from .tokens import Grant, TokenStore

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent / "web"
SLOW_VIEWER_S = 10.0  # a viewer whose send has not completed for this long is dropped
MAX_CALLS_PER_AGENT = 16  # calls of one agent on the board; its oldest ended ones make room for a new one
MAX_CALL_ID = 64
_STATIC_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


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
    coalesce_s: float = P.COALESCE_S
    web_dir: Path = field(default=WEB_DIR)


class _Viewer:
    """One subscribed dashboard: its pending deltas (one per call) and the task that sends them."""

    def __init__(self, ws: ServerConnection, name: str, coalesce_s: float) -> None:
        self.ws = ws
        self.name = name
        self.coalesce_s = coalesce_s
        self.pending: dict[str, Delta] = {}
        self.last_sent: dict[str, float] = {}
        self.wake = asyncio.Event()
        self.busy_since: float | None = None  # loop time a send began that has not finished

    def push(self, delta: Delta) -> None:
        """Queue a delta; inside the call's window it merges with the one already waiting."""
        waiting = self.pending.get(delta.call_id)
        self.pending[delta.call_id] = delta if waiting is None else waiting.merged(delta)
        self.wake.set()

    async def run(self) -> None:
        """Send pending deltas as their calls' windows open, until the connection closes."""
        loop = asyncio.get_running_loop()
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.pending:
                now = loop.time()
                next_open = None
                texts = []
                for call_id in list(self.pending):
                    opens = self.last_sent.get(call_id, -1.0) + self.coalesce_s
                    if opens > now:
                        next_open = opens if next_open is None else min(next_open, opens)
                        continue
                    delta = self.pending.pop(call_id)
                    texts.append(delta.data())
                    if isinstance(delta, Removed):
                        self.last_sent.pop(call_id, None)
                    else:
                        self.last_sent[call_id] = now
                if texts:
                    self.busy_since = now
                    await _send_all(self.ws, texts)
                    self.busy_since = None
                elif next_open is not None:
                    # only deltas inside their window are left: wait for the first window, or for news
                    try:
                        async with asyncio.timeout(max(0.0, next_open - loop.time())):
                            await self.wake.wait()
                    except TimeoutError:
                        pass
                    self.wake.clear()


async def _send_all(ws: ServerConnection, texts: list[bytes]) -> None:
    """Send text frames in one write: a send() per frame costs a syscall each, the hub's largest cost with
    thousands of calls. `send_context` keeps websockets' state checks, flow control and error handling;
    the frames are built by its sans-I/O protocol and written together."""
    if len(texts) == 1 or not hasattr(ws, "send_context"):
        for text in texts:
            await ws.send(text, text=True)
        return
    async with ws.send_context():
        protocol = ws.protocol
        for text in texts:
            protocol.send_text(text)
        # Only text frames were queued on an open connection (send_context checked), so there is no
        # end-of-stream marker among the chunks; send_context's own flush then finds nothing left to write.
        ws.transport.write(b"".join(protocol.data_to_send()))


class _FrameConnection(ServerConnection):
    """A server connection that can hand whole text frames to a callback as they arrive.

    An agent sends several messages a second and there are thousands of agents: the usual path (a frame
    queued, a future resolved, the handler task woken for each `recv`) was a large share of the hub's CPU.
    `process_event` is websockets' documented override point for incoming frames; anything but a whole
    text frame (control frames, binary, fragments) still takes the usual path.
    """

    on_text: Callable[[bytes], None] | None = None

    def process_event(self, event: Any) -> None:
        on_text = self.on_text
        if on_text is not None and event.opcode is Opcode.TEXT and event.fin:
            on_text(event.data)
            return
        super().process_event(event)


class _AgentLink:
    """One agent connection's checks: rate limit, bad-message allowance, its answers and its close."""

    def __init__(self, hub: Hub, ws: ServerConnection, grant: Grant) -> None:
        s = hub.settings
        self.hub = hub
        self.ws = ws
        self.agent_id = grant.agent_id
        self.loop = asyncio.get_running_loop()
        self.bucket = P.TokenBucket(s.rate_per_s, s.rate_burst)
        self.mistakes = P.TokenBucket(1.0, 10.0)  # bad messages are answered, but not without end
        self.closing = False
        self.tasks: set[asyncio.Task[None]] = set()

    def frame(self, raw: bytes) -> None:
        """One message from the agent (called from the connection's data callback: never blocks)."""
        if self.closing:
            return
        try:
            now = self.loop.time()
            if not self.bucket.take(now):
                self._close("rate limit")
                return
            problem, fatal = self.hub._agent_message(raw, self.agent_id, self.hub.state)
            if problem is None:
                return
            self._spawn(self.ws.send(P.dumps(P.error(problem))))
            if fatal or not self.mistakes.take(now):
                self._close(problem if fatal else "too many bad messages")
        except Exception:  # a bug here must not take the connection's reader down with it
            log.exception("agent %s: message dropped", self.agent_id)

    def _close(self, reason: str) -> None:
        self.closing = True
        log.warning("agent %s closed: %s", self.agent_id, reason)
        self._spawn(self.ws.close(P.POLICY_VIOLATION, _close_reason(reason)))

    def _spawn(self, coro: Any) -> None:
        """Answers go out in order, as tasks (the caller cannot await)."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and not isinstance(task.exception(), ConnectionClosed):
            log.warning("agent %s: %s", self.agent_id, task.exception())


class Hub:
    """The server: authentication, the floor state, and fan-out to viewers."""

    def __init__(self, settings: HubSettings, tokens: TokenStore, ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.tokens = tokens
        self.ssl_context = ssl_context
        self.state = FloorState(
            stale_s=settings.stale_s, remove_after_s=settings.remove_after_s, forget_stale_s=settings.forget_stale_s,
        )
        self.viewers: set[_Viewer] = set()
        self.port: int | None = None

    # --- serving ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, ready: Callable[[int], None] | None = None) -> None:
        """Serve until `stop` is set; `ready(port)` once listening (the real port when 0 was asked)."""
        s = self.settings
        async with serve(
            self._handler, s.host, s.port, process_request=self._http, ssl=self.ssl_context,
            max_size=s.max_message, compression=None,  # loopback/LAN: deflate would cost more CPU than it saves
            create_connection=_FrameConnection,
            open_timeout=10, close_timeout=2,
        ) as server:
            self.port = server.sockets[0].getsockname()[1]
            if ready is not None:
                ready(self.port)
            ticker = asyncio.create_task(self._tick_loop())
            try:
                await stop.wait()
            finally:
                ticker.cancel()

    async def _tick_loop(self) -> None:
        """Stale calls, removed calls, stuck viewers: checked a few times per stale period."""
        loop = asyncio.get_running_loop()
        period = max(0.05, min(1.0, self.settings.stale_s / 4))
        while True:
            await asyncio.sleep(period)
            for delta in self.state.tick(time.time()):
                self._broadcast(delta)
            now = loop.time()
            for viewer in list(self.viewers):
                if viewer.busy_since is not None and now - viewer.busy_since > SLOW_VIEWER_S:
                    log.warning("viewer %s stopped reading; dropped", viewer.name)
                    viewer.ws.transport.abort()  # its buffer is full: a close frame could not get out either

    def _broadcast(self, delta: Delta) -> None:
        for viewer in self.viewers:
            viewer.push(delta)

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
        grant = await self._hello(ws)
        if grant is None:
            return
        if grant.role == "viewer":
            await self._serve_viewer(ws, grant)
        else:
            await self._serve_agent(ws, grant)

    async def _hello(self, ws: ServerConnection) -> Grant | None:
        """The client's token, checked; the grant, or None after closing the connection with 1008."""
        try:
            async with asyncio.timeout(self.settings.hello_timeout_s):
                raw = await ws.recv()
        except TimeoutError:
            await ws.close(P.POLICY_VIOLATION, f"no hello within {self.settings.hello_timeout_s:g} s")
            return None
        except ConnectionClosed:
            return None
        try:
            msg = json.loads(raw)
        except ValueError:
            msg = None
        if not isinstance(msg, dict) or msg.get("type") != "hello":
            await ws.close(P.POLICY_VIOLATION, 'the first message must be {"type": "hello", "token": ...}')
            return None
        token = msg.get("token")
        grant = self.tokens.check(token) if isinstance(token, str) else None
        if grant is None:
            log.warning("rejected a client from %s: bad or missing token", _peer(ws))
            await ws.close(P.POLICY_VIOLATION, "bad token")
            return None
        try:
            await ws.send(P.dumps(P.welcome(grant.role, grant.agent_id)))
        except ConnectionClosed:
            return None
        log.info("%s %s connected from %s", grant.role, grant.name, _peer(ws))
        return grant

    async def _serve_agent(self, ws: ServerConnection, grant: Grant) -> None:
        """Events and heartbeats from one agent's publisher, each checked before it touches the board.

        On a `_FrameConnection` whole text frames are handled as they arrive (`on_text`); `recv` then only
        returns what that path leaves (binary or fragmented messages) and ends when the connection closes.
        """
        link = _AgentLink(self, ws, grant)
        if isinstance(ws, _FrameConnection):
            ws.on_text = link.frame
        try:
            while not link.closing:
                link.frame(await ws.recv(decode=False))  # json.loads takes the UTF-8 bytes as they are
            await ws.wait_closed()
        except ConnectionClosed:
            pass
        finally:
            if isinstance(ws, _FrameConnection):
                ws.on_text = None
            if link.tasks:
                await asyncio.gather(*link.tasks, return_exceptions=True)

    def _agent_message(self, raw: str | bytes, agent_id: str | None, state: FloorState) -> tuple[str | None, bool]:
        """Apply one agent message; (what was wrong, whether it ends the connection), or (None, False)."""
        try:
            data = json.loads(raw)
        except ValueError:
            return "not JSON", False
        if not isinstance(data, dict):
            return "a message is a JSON object", False
        if data.get("type") == "heartbeat":
            call_id = data.get("call_id")
            owner = state.owner(call_id) if isinstance(call_id, str) else None
            if owner is None:
                return f"heartbeat for unknown call {str(call_id)[:64]!r}", False
            if owner != agent_id:
                return f"call {call_id} is not agent {agent_id}'s", True
            delta = state.heartbeat(call_id, time.time())
        else:
            try:
                event = event_from_dict(data)
            except ValueError as exc:
                return f"invalid event: {exc}", False
            owner = state.owner(event.call_id)
            if len(event.call_id) > MAX_CALL_ID:
                return f"call_id is longer than {MAX_CALL_ID} characters", False
            if isinstance(event, CallStarted):
                if event.agent_id != agent_id:
                    return f"agent {agent_id} may not publish a call of agent {event.agent_id[:64]!r}", True
                if owner is None:
                    room = state.make_room(agent_id or "", MAX_CALLS_PER_AGENT)
                    if room is None:
                        return f"agent {agent_id} has {MAX_CALLS_PER_AGENT} calls that have not ended; end one first", False
                    for gone in room:
                        self._broadcast(gone)
            elif owner is None:
                return f"unknown call {event.call_id}: send its call.started first", False
            if owner is not None and owner != agent_id:
                return f"call {event.call_id} is not agent {agent_id}'s", True
            delta = state.apply(event, time.time())
        if delta is not None:
            self._broadcast(delta)
        return None, False

    async def _serve_viewer(self, ws: ServerConnection, grant: Grant) -> None:
        """A snapshot, then deltas from the viewer's sender task; a viewer that publishes is closed."""
        viewer = _Viewer(ws, grant.name, self.settings.coalesce_s)
        text = P.dumps(P.snapshot(self.state.snapshot()))
        self.viewers.add(viewer)  # from here on it gets every delta after the snapshot it is about to receive
        sender: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        bucket = P.TokenBucket(self.settings.rate_per_s, self.settings.rate_burst)
        try:
            await ws.send(text)
            sender = asyncio.create_task(viewer.run())
            async for raw in ws:
                if not bucket.take(loop.time()):
                    await ws.close(P.POLICY_VIOLATION, "rate limit")
                    return
                try:
                    data = json.loads(raw)
                except ValueError:
                    data = None
                await ws.send(P.dumps(P.error("a viewer may only subscribe; it sends nothing after hello")))
                if isinstance(data, dict) and (data.get("type") == "heartbeat" or "schema" in data):
                    log.warning("viewer %s closed: tried to publish", grant.name)
                    await ws.close(P.POLICY_VIOLATION, "a viewer may not publish")
                    return
        except ConnectionClosed:
            pass
        finally:
            self.viewers.discard(viewer)
            if sender is not None:
                sender.cancel()
                try:
                    await sender
                except (asyncio.CancelledError, ConnectionClosed):
                    pass


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


def run_hub(settings: HubSettings) -> int:
    """`callmon hub`: serve until Ctrl-C or SIGTERM; the exit code."""
    tokens = TokenStore(settings.tokens)
    ctx = _ssl_context(settings.cert, settings.key)
    agents = sum(1 for g in tokens.grants if g.role == "agent")
    viewers = len(tokens.grants) - agents
    if not tokens.grants:
        print(f"callmon hub: warning: {settings.tokens} holds no tokens; add one with 'callmon hub token'", file=sys.stderr)
    _raise_fd_limit()
    hub = Hub(settings, tokens, ctx)
    ws_scheme, http_scheme = ("wss", "https") if ctx else ("ws", "http")

    listening = False

    def ready(port: int) -> None:
        nonlocal listening
        listening = True
        where = f"{settings.host}:{port}"
        print(
            f"callmon hub: listening on {ws_scheme}://{where}{P.WS_PATH}, wallboard at {http_scheme}://{where}/ "
            f"({agents} agent and {viewers} viewer tokens)",
            file=sys.stderr, flush=True,
        )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
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

