"""What every floor client shares: the hub address check, the hello and its answer, the backoff, the reasons.

The agent's publisher, `callmon floor` (terminal and `--no-tui`) and the tests' viewers all connect the
same way: `ws_url` turns what the user typed into the websocket endpoint (or BadInput), `say_hello`
sends the hello and returns the hub's welcome (TokenRefused when the hub closes with 1008), `Backoff`
spaces the retries, and `describe` turns a failed connection into words for a status line.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import BadInput
from . import protocol as P


class TokenRefused(BadInput):
    """The hub closed the link with 1008 at the hello: the token is wrong, revoked, expired, or the wrong role."""


def ws_url(url: str, option: str = "--hub", *, web: bool = True) -> str:
    """The hub's websocket endpoint from what the user typed: ws://host:port → ws://host:port/ws.

    With `web`, http(s):// (the wallboard's address) is accepted too; anything else, or a bad port, is bad input.
    """
    parts = urlsplit(url.strip())
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme) if web else parts.scheme
    if scheme not in ("ws", "wss") or not parts.hostname:
        raise BadInput(f"{option} {url!r} is not a hub address; give ws://HOST:PORT (or wss:// with TLS), "
                       f"e.g. ws://127.0.0.1:{P.DEFAULT_PORT}")
    try:
        parts.port  # noqa: B018 (a bad port raises here, not later in a background task)
    except ValueError:
        raise BadInput(f"{option} {url!r} has a bad port; e.g. ws://floor-hub:{P.DEFAULT_PORT}") from None
    path = parts.path if parts.path not in ("", "/") else P.WS_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


async def say_hello(ws: Any, token: str, *, since: str | None = None, wait_s: float = P.HELLO_TIMEOUT_S) -> dict[str, Any]:
    """Say hello on an open websocket and return the hub's welcome; TokenRefused when it refuses."""
    from websockets.exceptions import ConnectionClosed

    await ws.send(P.dumps(P.hello(token, since)))
    try:
        reply = json.loads(await asyncio.wait_for(ws.recv(), wait_s))
    except ConnectionClosed as exc:
        if exc.rcvd is not None and exc.rcvd.code == P.POLICY_VIOLATION:
            raise TokenRefused(exc.rcvd.reason or "the hub rejected the token") from None
        raise
    if not isinstance(reply, dict) or reply.get("type") != "welcome":
        raise ConnectionError(f"the hub answered {str(reply)[:80]!r} instead of a welcome")
    return reply


class Backoff:
    """Delays between reconnection attempts: doubling from `first` up to `most`, each with ±20 % jitter
    (so a hub restart is not met by every client at the same instant)."""

    def __init__(self, first: float = 0.5, most: float = 10.0) -> None:
        self.first = first
        self.most = most
        self._next = first

    def reset(self) -> None:
        """The link was up: the next failure waits `first` again."""
        self._next = self.first

    def next(self) -> float:
        """The next delay, in seconds."""
        delay = self._next * random.uniform(0.8, 1.2)
        self._next = min(self.most, self._next * 2)
        return delay


def describe(exc: BaseException, url: str = "") -> str:
    """Why a connection to the hub failed, in a few words for a status line or a warning."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "timed out"
    if url.startswith("wss:") and (isinstance(exc, ConnectionResetError) or "WRONG_VERSION_NUMBER" in str(exc)
                                   or "wrong version number" in str(exc)):
        # a plain hub answers a TLS hello with an HTTP error and hangs up
        return "TLS failed: the hub does not speak TLS (use ws:// for a plain hub)"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {getattr(exc, 'reason', None) or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        if "Name or service not known" in exc.strerror or "not known" in exc.strerror:
            return "unknown host"
        return exc.strerror.lower() if exc.strerror else str(exc)
    text = str(exc).strip() or type(exc).__name__
    if "Connect call failed" in text:
        return "connection refused"
    return text.splitlines()[0][:120]
