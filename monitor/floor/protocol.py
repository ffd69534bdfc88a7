"""The floor protocol's constants, message shapes and the per-connection rate limit.

The hub, the agent's publisher, the terminal dashboard and the web wallboard all speak it; docs/FLOOR.md
describes it for people. Every websocket message is one JSON object in a text frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

DEFAULT_PORT = 8765
WS_PATH = "/ws"

HELLO_TIMEOUT_S = 5.0  # the first message must be the hello, within this
MAX_MESSAGE = 64 * 1024  # bytes; a bigger frame closes the connection with 1009
RATE_PER_S = 50.0  # messages a connection may send, sustained...
RATE_BURST = 200.0  # ...and in one burst
HEARTBEAT_S = 2.0  # the publisher's heartbeat while a call is live
STALE_S = 10.0  # a live call with no event or heartbeat for this long is `stale`
REMOVE_AFTER_S = 60.0  # an ended call leaves the board this long after its end
FORGET_STALE_S = 600.0  # a stale call whose agent never comes back leaves the board after this
FRAME_S = 0.025  # a hub sends its viewers at most one frame this often, with at most one update per call in it
TRANSCRIPT_TAIL = 20  # transcript lines a CALL keeps

MISTAKES_PER_S = 1.0  # malformed messages a link may send, sustained, before it is closed...
MISTAKES_BURST = 10.0  # ...and in one burst
LEAD_PER_S = 0.5  # acknowledgements and whispers one lead may send, sustained...
LEAD_BURST = 5.0  # ...and in one burst
SLOW_VIEWER_S = 10.0  # a viewer whose send (snapshot included) has not completed for this long is dropped
TOKEN_CHECK_S = 1.0  # how often the hub looks at the token file and at expiry dates

POLICY_VIOLATION = 1008  # bad token, no hello, a viewer publishing, another agent's call, rate limit, revoked
MESSAGE_TOO_BIG = 1009  # a frame above MAX_MESSAGE (websockets closes it itself)

ROLES = ("agent", "viewer")


def encode(message: Any) -> bytes:
    """A message as the UTF-8 bytes of the compact JSON text frame the floor sends (never NaN or Infinity: browsers
    reject them; orjson writes null for them, and what agents send was checked finite before it got here)."""
    return orjson.dumps(message)  # events hold plain Python numbers: their producers convert numpy's


def dumps(message: dict[str, Any]) -> str:
    """`encode`, as text (what a websocket's text frame takes)."""
    return encode(message).decode()


def hello(token: str, since: str | None = None) -> dict[str, Any]:
    """The first message of every client; a viewer that reconnects gives the last position it saw."""
    return {"type": "hello", "token": token} if since is None else {"type": "hello", "token": token, "since": since}


def welcome(role: str, agent_id: str | None) -> dict[str, Any]:
    """The hub's answer to a good hello."""
    return {"type": "welcome", "role": role, "agent_id": agent_id}


def error(message: str) -> dict[str, Any]:
    """The hub's answer to a message it dropped (the reason, one line)."""
    return {"type": "error", "message": message}


def heartbeat(call_id: str) -> dict[str, Any]:
    """The publisher's sign of life while its call is live and quiet."""
    return {"type": "heartbeat", "call_id": call_id}


def snapshot(calls: list[dict[str, Any]], pos: str | None, resumed: bool = False) -> dict[str, Any]:
    """Every call on the board, sent to a viewer once after its welcome, stamped with the position it is at.

    `resumed`: the viewer said `since` and the hub still had what followed it, so each call's `transcript`
    holds only the lines after that position (the viewer keeps those it has).
    """
    return {"type": "snapshot", "pos": pos, "resumed": resumed, "calls": calls}


def batch_frame(texts: list[bytes], pos: str | None) -> bytes:
    """Several pre-serialised messages as one `batch` frame, without parsing them again."""
    head = b'{"type":"batch","pos":' + encode(pos) + b',"messages":['
    return head + b",".join(texts) + b"]}"


def status(backplane: str) -> dict[str, Any]:
    """The hub's link to its backplane, for viewers' status lines: "ok", "local" or "down: why"."""
    return {"type": "status", "backplane": backplane}


def lead(call_id: str, kind: str, by: str, text: str = "", ack: dict[str, Any] | None = None) -> dict[str, Any]:
    """To an agent: a lead acknowledged its call's alert ("ack", with what it covered) or whispered to it
    ("whisper"). The publisher gives an ack back after a reconnect, so a restarted hub alone keeps it."""
    message = {"type": "lead", "call_id": call_id, "kind": kind, "by": by, "text": text}
    if ack is not None:
        message["ack"] = ack
    return message


def resync() -> dict[str, Any]:
    """To an agent: the hub lost its state (its backplane came back empty): send your calls' full state again."""
    return {"type": "resync"}


def removed(call_id: str) -> dict[str, Any]:
    """An ended (or long-stale) call left the board."""
    return {"type": "removed", "call_id": call_id}


@dataclass
class TokenBucket:
    """`rate` tokens a second up to `burst`; `take` spends one, False when none is left.

    The caller passes the clock (monotonic seconds) so the hub reads it once per message.
    """

    rate: float = RATE_PER_S
    burst: float = RATE_BURST
    tokens: float = field(default=-1.0)
    stamp: float = field(default=0.0)

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.burst

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait_s(self, now: float) -> float:
        """Seconds until `take` would succeed (0 when it would now); does not spend."""
        tokens = min(self.burst, self.tokens + max(0.0, now - self.stamp) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate
