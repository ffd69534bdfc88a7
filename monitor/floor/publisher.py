"""The agent's side of the floor: a pipeline sink that publishes the call to the hub, never in the call's way.

The pipeline thread calls the publisher with each event. It redacts the event (transcripts are personal
data and must not leave the agent's process unredacted), serialises it, puts it in a bounded queue and
returns at once. A daemon thread with its own asyncio loop connects, says hello, sends the queue in
order with heartbeats, and reconnects with backoff when the hub goes away; after a reconnect (or when
the hub asks, `resync`) it first sends the call's full state again (call.started, the last transcript
lines, the active nudges, the supervisor requests, the latest metrics, call.ended), so a restarted hub
loses nothing; the hub's fold ignores what it already has. It says once on stderr when it cannot reach
the hub (and the TUI shows `link`). A lead's acknowledgement or whisper from the hub goes to `on_lead`.
The agent's coaching is the same whether the hub is up, down, or rejects the token.

What is sent: every event except partial transcripts (the board shows finals only), and metrics thinned
to about 4 a second of call time (the board needs the latest state, not every 100 ms block; a change of
heat is always sent). While the link is slow or down only the newest metrics waits in the queue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
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
    TranscriptPartial,
)
from ..redact import redact_event
from . import protocol as P
from .link import Backoff, TokenRefused, describe, say_hello, ws_url

log = logging.getLogger(__name__)

METRICS_EVERY_S = 0.25  # call seconds between forwarded metrics
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 10.0
SEND_RATE = 40.0  # the publisher's own pace, under the hub's 50/s limit, so a backlog never trips it
SEND_BURST = 150.0

_METRICS, _OTHER, _KEEP = 0, 1, 2  # queue item kinds; _KEEP (call.started, call.ended) is never dropped


class HubPublisher:
    """A sink that publishes one agent's calls to a floor hub (`--hub URL --token T`)."""

    def __init__(
        self, url: str, token: str, agent_id: str, *, buffer: int = 2000, ssl_context: ssl.SSLContext | None = None,
        on_lead: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        # Several hubs on one backplane: "ws://hub-a:8765,ws://hub-b:8765"; a link that fails moves to the next.
        self.urls = [ws_url(u, web=False) for u in url.split(",") if u.strip()] or [ws_url(url, web=False)]
        self.url = self.urls[0]
        self.token = token
        self.on_lead = on_lead  # called on the publisher's thread with each `lead` message for our call
        self.lead: list[dict[str, Any]] = []  # the lead messages received, in order
        self._state: dict[str, Any] = {"finals": deque(maxlen=P.TRANSCRIPT_TAIL), "nudges": {}, "requests": [],
                                       "metrics": None, "ended": None}
        self._warned = False  # one warning line per outage
        self._resend = False  # send the call's full state before the queue
        self.agent_id = agent_id
        self.buffer = max(2, buffer)
        self.ssl_context = ssl_context
        self.dropped = 0  # events dropped because the queue was full (the hub was down a long time)
        self._queue: deque[tuple[int, str]] = deque()
        self._lock = threading.Lock()
        self._queued_metrics: tuple[int, str] | None = None
        self._last_metrics_t: float | None = None
        self._last_heat: int | None = None
        self._started: str | None = None  # the first call.started, re-sent after every reconnect
        self._call_id: str | None = None
        self._started_sent = False
        self._live = False  # between call.started and call.ended: heartbeats go out
        self._link = "connecting"
        self._rejected = False
        self._drop_said = False
        self._closing = False
        self._deadline = float("inf")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._thread_main, name="hub-publisher", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)

    # --- the pipeline's side: never blocks, never raises --------------------------------------

    def __call__(self, event: Event) -> None:
        """Queue one event for the hub and return at once."""
        try:
            self._put(event)
        except Exception as exc:  # the call must go on whatever the publisher's trouble
            # Said once, so a board that misses events says why; the rest go to the debug log.
            if not self._drop_said:
                self._drop_said = True
                log.warning("hub publisher could not send a %s event (%s: %s); the call goes on",
                            event.type, type(exc).__name__, exc)
            log.debug("hub publisher dropped an event", exc_info=True)

    def _put(self, event: Event) -> None:
        if self._rejected or self._closing:
            return
        if isinstance(event, TranscriptPartial) and not isinstance(event, TranscriptFinal):
            return
        if isinstance(event, Metrics):
            if (self._last_metrics_t is not None and event.t - self._last_metrics_t < METRICS_EVERY_S
                    and event.heat == self._last_heat):
                return
            self._last_metrics_t, self._last_heat = event.t, event.heat
        text = P.dumps(redact_event(event).to_dict())
        kind = _METRICS if isinstance(event, Metrics) else _KEEP if isinstance(event, (CallStarted, CallEnded)) else _OTHER
        item = (kind, text)
        with self._lock:
            self._remember(event, text)
            if kind == _METRICS:
                if self._queued_metrics is not None:
                    try:
                        self._queue.remove(self._queued_metrics)  # only the newest state is worth sending
                    except ValueError:
                        pass
                self._queued_metrics = item
            if len(self._queue) >= self.buffer:
                self._drop_oldest()
            self._queue.append(item)
            if isinstance(event, CallStarted):
                if self._started is None or event.call_id != self._call_id:
                    self._started, self._call_id, self._started_sent = text, event.call_id, False
                self._live = True
            elif isinstance(event, CallEnded) and event.call_id == self._call_id:
                self._live = False
        self._notify()

    def _remember(self, event: Event, text: str) -> None:
        """Keep what a restarted hub needs to show the call as it was (the caller holds the lock)."""
        state = self._state
        if isinstance(event, CallStarted) and event.call_id != self._call_id:
            state["finals"].clear()
            state["nudges"].clear()
            state["requests"].clear()
            state["metrics"] = state["ended"] = None
        if isinstance(event, TranscriptFinal):
            state["finals"].append(text)
        elif isinstance(event, Nudge):
            state["nudges"][event.id] = text
        elif isinstance(event, NudgeCleared):
            state["nudges"].pop(event.id, None)
        elif isinstance(event, SupervisorRequested):
            state["requests"] = [*state["requests"][-19:], text]
        elif isinstance(event, Metrics):
            state["metrics"] = text
        elif isinstance(event, CallEnded):
            state["ended"] = text

    def _full_state(self) -> list[str]:
        """The call's state as messages, oldest first (the caller holds the lock)."""
        if self._started is None:
            return []
        state = self._state
        texts = [self._started, *state["finals"], *state["nudges"].values(), *state["requests"]]
        if state["metrics"] is not None:
            texts.append(state["metrics"])
        if state["ended"] is not None:
            texts.append(state["ended"])
        acks = [m for m in self.lead if m.get("kind") == "ack" and m.get("call_id") == self._call_id and "ack" in m]
        if acks:  # the lead's acknowledgement, given back: a restarted hub alone would have lost it
            texts.append(P.dumps(acks[-1]))
        return texts

    def _drop_oldest(self) -> None:
        """Make room: the oldest metrics goes first, then the oldest other event; never call.started/ended."""
        for kind in (_METRICS, _OTHER):
            for item in self._queue:
                if item[0] == kind:
                    self._queue.remove(item)
                    self.dropped += 1
                    return

    def _notify(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop closed between the check and the call
                pass

    @property
    def lead_note(self) -> str | None:
        """What the agent's banner says of the lead: "your lead is coming", the latest whisper, or None."""
        for message in reversed(self.lead):
            who = str(message.get("by") or "your lead")
            if message.get("kind") == "whisper":
                return f"✉ {who}: {message.get('text', '')}"
            if message.get("kind") == "ack":
                return f"➜ your lead is coming ({who})"
        return None

    @property
    def link(self) -> str:
        """The link to the hub, for the agent's screen: connected, connecting, or down: why, retrying when."""
        return self._link

    def close(self, timeout: float = 3.0) -> None:
        """Send what is queued (call.ended above all) and stop; returns within `timeout` seconds."""
        start = time.monotonic()
        self._deadline = start + timeout
        self._closing = True
        self._notify()
        self._thread.join(max(0.0, timeout - (time.monotonic() - start)))
        if self.dropped:
            log.warning("hub publisher dropped %d event(s) while the hub was unreachable", self.dropped)

    # --- the background thread ----------------------------------------------------------------

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(loop))
        except Exception:
            log.debug("hub publisher stopped", exc_info=True)
        finally:
            self._loop = None
            loop.close()

    async def _main(self, loop: asyncio.AbstractEventLoop) -> None:
        self._wake = asyncio.Event()
        self._loop = loop
        self._ready.set()
        backoff = Backoff(BACKOFF_FIRST_S, BACKOFF_MAX_S)
        while not self._rejected:
            self._link = "connecting"
            try:
                reason = await self._connect_and_send()
                if reason is None:
                    return  # closed after flushing
                if reason.startswith("!"):
                    backoff.reset()
                reason = reason.lstrip("!")
            except TokenRefused as exc:
                self._reject(f"hub rejected the token ({exc})")
                return
            except Exception as exc:  # refused, timed out, a handshake or TLS failure: the same backoff
                reason = describe(exc, self.url)
            if self._rejected:
                return
            if not self._warned:
                self._warned = True
                print(f"callmon: warning: cannot reach the hub at {self.url} ({reason}); the call goes on, "
                      "retrying in the background", file=sys.stderr, flush=True)
            if self._closing:
                return  # one try was made during close; the hub is not there
            self.url = self.urls[(self.urls.index(self.url) + 1) % len(self.urls)]
            pause = backoff.next() if self.url == self.urls[0] else 0.05
            self._link = f"down: {reason}, retrying in {pause:.1f} s"
            log.debug("hub link %s", self._link)
            await self._sleep(pause)

    async def _sleep(self, seconds: float) -> None:
        """Wait, but wake early on close so the last events still get one try."""
        end = time.monotonic() + seconds
        while not self._closing and time.monotonic() < end:
            assert self._wake is not None
            self._wake.clear()
            try:
                async with asyncio.timeout(end - time.monotonic()):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _remaining(self) -> float:
        return max(0.05, self._deadline - time.monotonic())

    async def _connect_and_send(self) -> str | None:
        """One connection: hello, then the queue and heartbeats. None after a clean close; else why it ended
        (prefixed "!" when the link had been up, so the backoff starts over)."""
        from websockets.asyncio.client import connect

        open_timeout = min(5.0, self._remaining()) if self._closing else 5.0
        kwargs = {"ssl": self.ssl_context} if self.ssl_context is not None and self.url.startswith("wss:") else {}
        async with connect(self.url, open_timeout=open_timeout, close_timeout=1.0, compression=None, **kwargs) as ws:
            await say_hello(ws, self.token, wait_s=min(P.HELLO_TIMEOUT_S, self._remaining()) if self._closing
                            else P.HELLO_TIMEOUT_S)
            self._link = "connected"
            if self._warned:
                print(f"callmon: the hub at {self.url} is reachable again", file=sys.stderr, flush=True)
            self._warned = False
            log.debug("hub link connected to %s", self.url)
            self._resend = True  # the hub may have restarted: the call's state goes first
            reader = asyncio.create_task(self._read(ws))
            try:
                return await self._send_loop(ws, reader)
            except Exception:
                if reader.done() or ws.close_code is not None:
                    return self._closed(ws)
                raise
            finally:
                reader.cancel()

    def _closed(self, ws) -> str:  # noqa: ANN001 (a websockets connection)
        """Why an established link ended ("!" first: it had been up); a policy close stops the retries."""
        code, reason = ws.close_code, ws.close_reason or ""
        text = f"{code} {reason}".strip() if code is not None else "connection lost"
        if code == P.POLICY_VIOLATION:
            self._reject(f"hub closed the link ({text})")
        return f"!hub closed the link ({text})"

    def _reject(self, why: str) -> None:
        """A policy close: retrying would be refused the same way. Say so once; the call goes on."""
        self._rejected = True
        self._link = f"down: {why}; not retrying"
        with self._lock:
            self._queue.clear()
        print(f"callmon: warning: {why}; the call goes on without the floor (check --token and [call] agent_id)",
              file=sys.stderr, flush=True)

    async def _read(self, ws) -> None:  # noqa: ANN001 (a websockets connection)
        """Errors are logged; a lead's message goes to `on_lead`; `resync` re-sends the call. Reading also lets
        the close frame in."""
        try:
            async for raw in ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    message = None
                kind = message.get("type") if isinstance(message, dict) else None
                if kind == "lead" and message.get("call_id") == self._call_id:
                    self.lead.append(message)
                    if self.on_lead is not None:
                        try:
                            self.on_lead(message)
                        except Exception:  # the screen's trouble must not end the link
                            log.debug("on_lead failed", exc_info=True)
                elif kind == "resync":
                    self._resend = True
                    if self._wake is not None:
                        self._wake.set()
                else:
                    log.warning("hub: %s", str(raw)[:200])
        finally:
            if self._wake is not None:
                self._wake.set()

    async def _send_loop(self, ws, reader: asyncio.Task[None]) -> str | None:  # noqa: ANN001
        """Send the queue in order, paced, with heartbeats; None once closing and everything is out,
        else why the link ended."""
        assert self._wake is not None
        bucket = P.TokenBucket(SEND_RATE, SEND_BURST)
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + P.HEARTBEAT_S
        while True:
            if reader.done():
                return self._closed(ws)
            if self._resend:
                self._resend = False
                with self._lock:
                    again = self._full_state() if self._started_sent else []
                for text in again:  # a reconnect: the hub may have restarted and forgotten the call
                    await asyncio.sleep(bucket.wait_s(loop.time()))
                    bucket.take(loop.time())
                    await ws.send(text)
            with self._lock:
                item = self._queue.popleft() if self._queue else None
                if item is not None and item is self._queued_metrics:
                    self._queued_metrics = None
            if item is not None:
                wait = bucket.wait_s(loop.time())
                if wait > 0:
                    await asyncio.sleep(wait)
                bucket.take(loop.time())
                try:
                    await ws.send(item[1])
                except BaseException:
                    with self._lock:
                        self._queue.appendleft(item)  # not sent: first in line on the next link
                    raise
                if item[1] is self._started:
                    self._started_sent = True
                continue
            now = loop.time()
            if self._closing:
                await ws.close()
                return None
            if now >= next_beat:
                if self._live and self._call_id is not None and self._started_sent:
                    await ws.send(P.dumps(P.heartbeat(self._call_id)))
                next_beat = now + P.HEARTBEAT_S
            self._wake.clear()
            if self._queue or self._closing:
                continue
            try:
                async with asyncio.timeout(max(0.0, next_beat - loop.time())):
                    await self._wake.wait()
            except TimeoutError:
                pass
