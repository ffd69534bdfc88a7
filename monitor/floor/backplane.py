"""Where the floor's messages go once a hub has accepted them: this hub alone, or Redis shared by many hubs.

A hub hands every accepted message (an agent's event or heartbeat, a lead's acknowledgement or whisper)
to its backplane, and folds what the backplane hands back (`Entry`, in one order for everybody, each
with a position and a time) into its board. Alone (`LocalBackplane`, the embedded default) that is a
counter and a short memory for resuming viewers. With Redis (`RedisBackplane`):

- `callmon:floor:events` is a stream of every accepted message, in one order. A hub appends what it accepted
  since its last write as ONE stream entry (a JSON list: one XADD per batch, not per message; trimmed with
  `MINID ~` to the last STREAM_KEEP_S seconds); the entries' ids are the positions, and every hub reads the
  stream (XREAD BLOCK), so an agent may publish to any hub and a viewer on any other hub sees the call, in
  the same order;
- `callmon:floor:call:<call_id>` is a hash per call: the CALL as the hub that took the call's last entry
  folded it, and the position of that entry; it expires REMOVE_AFTER_S after the call ended (or
  FORGET_STALE_S after its last sign of life), so a hub that starts (or restarts) loads the board from the
  hashes and replays the stream from there;
- `callmon:floor:calls` is the set of call ids that have a hash (so loading needs no SCAN).

A Redis that goes away is retried with backoff; the hub keeps serving (status "down: why") and, once
Redis is back, reloads its board from it and asks its agents to re-send their calls (`on_reset`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import orjson

from ..errors import BadInput
from .link import Backoff
from .protocol import encode

log = logging.getLogger(__name__)

PREFIX = "callmon:floor:"
STREAM_KEEP_S = 30.0  # seconds of messages the stream keeps (approximately): what a resuming viewer can catch up on
RESUME_MAX = 50_000  # messages: a viewer further behind than this gets a fresh snapshot instead
READ_COUNT = 100  # stream entries per XREAD (each a batch of up to WRITE_MAX messages)
WRITE_MAX = 1000  # messages in one stream entry
SAVE_CHUNK = 50  # call hashes written in one pipeline
REPLAY_S = 5.0  # on loading, the stream is replayed from this far before its end at least (hashes lag)
LOCAL_KEEP = 200_000  # how many messages back a viewer of a hub alone can resume from (~20 s of 2,000 agents)


class Entry(NamedTuple):
    """One accepted message: `data` is {"k": "m" (metrics, as the board takes them) | "e" (any other event) |
    "b" (heartbeat) | "l" (lead), "c": call id, "h": hub id, ...}. (A named tuple: thousands a second.)"""

    pos: str
    at: float  # unix seconds: the fold's clock, the same on every hub
    data: dict[str, Any]


def pos_key(pos: str) -> tuple[int, int]:
    """A position as a sortable pair (Redis stream ids and local positions are both "A-B")."""
    a, _, b = pos.partition("-")
    return int(a), int(b or 0)


def valid_pos(pos: Any) -> bool:
    """Whether a viewer's `since` looks like a position at all."""
    if not isinstance(pos, str) or len(pos) > 40:
        return False
    a, sep, b = pos.partition("-")
    return bool(sep) and a.isdigit() and b.isdigit()


OnEntry = Callable[[Entry], None]


class LocalBackplane:
    """One hub alone: positions are "<start ms>-<n>", so a position from before a restart is not mistaken."""

    status = "local"

    def __init__(self) -> None:
        self.epoch = int(time.time() * 1000)
        self.seq = 0
        self.kept: deque[tuple[int, Entry]] = deque()  # (seq, entry) of the last LOCAL_KEEP a resume reads
        self.on_entry: OnEntry = lambda entry: None

    async def start(self, on_entry: OnEntry, on_reset: Callable[[], None], on_status: Callable[[str], None]) -> None:
        """Begin handing entries to `on_entry` (a hub alone has nothing to load)."""
        self.on_entry = on_entry

    async def publish(self, items: list[dict[str, Any]]) -> None:
        """Number the items and fold them at once."""
        now = time.time()
        kept = self.kept
        for data in items:
            self.seq += 1
            entry = Entry(f"{self.epoch}-{self.seq}", now, data)
            if data.get("k") == "e":  # what a resume reads: metrics and heartbeats only move the position
                kept.append((self.seq, entry))
            self.on_entry(entry)
        while kept and kept[0][0] <= self.seq - LOCAL_KEEP:
            kept.popleft()

    async def since(self, pos: str, upto: str | None) -> list[Entry] | None:
        """The entries after `pos` that a resume reads (events; not metrics or heartbeats), or None when `pos` is
        more than LOCAL_KEEP messages back (or not this run's)."""
        epoch, seq = pos_key(pos)
        if epoch != self.epoch or seq > self.seq or seq < self.seq - LOCAL_KEEP:
            return None
        return [e for n, e in self.kept if n > seq]

    async def save(self, calls: dict[str, tuple[dict[str, Any] | None, str]]) -> None:
        """Nothing to save: a hub alone gets its calls back from the publishers after a restart."""

    async def stop(self) -> None:
        """Nothing to release."""


class _Recent:
    """The events (`k` "e": transcript lines among them) of the last STREAM_KEEP_S of the stream, as this hub read
    them: a viewer that resumes here (from this hub or another) gets its lines without reading the stream again
    (twenty-five viewers of a killed hub, each reading seconds of a busy stream, took longer than its kill)."""

    def __init__(self) -> None:
        self.entries: deque[tuple[tuple[int, int], Entry]] = deque()
        self.complete: tuple[int, int] | None = None  # every event after this position is in `entries`

    def start(self) -> None:
        """Reading the stream (again): complete from the first entry read (`seen`)."""
        self.entries.clear()
        self.complete = None

    def seen(self, key: tuple[int, int]) -> None:
        """A stream entry was read at `key` (any kind)."""
        if self.complete is None:
            self.complete = key

    def add(self, key: tuple[int, int], entry: Entry) -> None:
        """An event read at position `key` (in stream order)."""
        entries = self.entries
        entries.append((key, entry))
        oldest = key[0] - int(STREAM_KEEP_S * 1000)
        while entries[0][0][0] < oldest:
            self.complete = entries.popleft()[0]

    def after(self, key: tuple[int, int], upto: tuple[int, int]) -> list[Entry] | None:
        """The events after `key` up to `upto`, or None when this hub did not read them all."""
        if self.complete is None or key < self.complete:
            return None
        return [e for k, e in self.entries if key < k <= upto]


class RedisBackplane:
    """Many hubs on one Redis (see the module docstring for the keys)."""

    def __init__(self, url: str, *, remove_after_s: float, forget_stale_s: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
            raise BadInput(f"--redis {url!r} is not a Redis URL; give redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0")
        try:
            parts.port  # noqa: B018 (a bad port is bad input here, not a retry loop later)
        except ValueError:
            raise BadInput(f"--redis {url!r} has a bad port; e.g. redis://127.0.0.1:6379/0") from None
        import redis.asyncio as aioredis

        self.url = url
        self.redis = aioredis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=None, health_check_interval=10)
        self.remove_after_s = remove_after_s
        self.forget_stale_s = forget_stale_s
        self.stream = PREFIX + "events"
        self.status = "connecting"
        self.last = "0-0"  # the last position folded
        self._reader: asyncio.Task[None] | None = None
        self._reloading = False
        self.recent = _Recent()

    def _key(self, call_id: str) -> str:
        return f"{PREFIX}call:{call_id}"

    async def start(self, on_entry: OnEntry, on_reset: Callable[[], None], on_status: Callable[[str], None]) -> None:
        """Load the board (when Redis answers) and follow the stream in a task until `stop`."""
        self.on_entry, self.on_reset, self.on_status = on_entry, on_reset, on_status
        try:
            await self._load()
        except Exception as exc:  # down at start: the reader retries; the hub serves what it gets meanwhile
            self.down(exc)
        self._reader = asyncio.create_task(self._follow())

    def down(self, exc: BaseException, *, quiet: bool = False) -> None:
        """Redis failed a command: say so once (one log line, a status for viewers) until it is back."""
        status = f"down: {_why(exc)}"
        if self.status.startswith("down"):
            return
        if not quiet:
            log.warning("redis at %s is unreachable (%s); serving what this hub has, retrying", self.url, _why(exc))
        self.status = status
        self.on_status(status)

    async def _load(self) -> None:
        """The board from the hashes, then the stream from where the oldest hash left off (or REPLAY_S back)."""
        r = self.redis
        last = await r.xrevrange(self.stream, count=1)
        end = last[0][0].decode() if last else "0-0"
        ids = [i.decode() for i in await r.smembers(PREFIX + "calls")]
        stored: dict[str, str] = {}
        if ids:
            pipe = r.pipeline(transaction=False)
            for call_id in ids:
                pipe.hmget(self._key(call_id), "pos", "call")
            gone = []
            for call_id, (pos, call) in zip(ids, await pipe.execute(), strict=True):
                if pos is None or call is None:
                    gone.append(call_id)
                    continue
                stored[call_id] = pos.decode()
                self.on_entry(Entry(pos.decode(), 0.0, {"k": "r", "call": orjson.loads(call)}))
            if gone:
                await r.srem(PREFIX + "calls", *gone)
        start_ms = pos_key(end)[0] - int(REPLAY_S * 1000)
        if stored:
            start_ms = min(start_ms, *(pos_key(p)[0] for p in stored.values()))
        cursor = f"{max(0, start_ms)}-0"
        self.recent.start()
        while True:
            batch = await r.xrange(self.stream, min=cursor, max=end, count=READ_COUNT) if end != "0-0" else []
            for raw_id, fields in batch:
                pos = raw_id.decode()
                cursor = "(" + pos
                key = pos_key(pos)
                self.recent.seen(key)
                for data in _messages(fields):
                    entry = Entry(pos, key[0] / 1000, data)
                    if data.get("k") == "e":
                        self.recent.add(key, entry)
                    call_id = data.get("c")
                    if call_id in stored and key <= pos_key(stored[call_id]):
                        continue  # already in the hash
                    self.on_entry(entry)
            if len(batch) < READ_COUNT:
                break
        self.last = end
        self.status = "ok"
        self._reloading = False
        self.on_status("ok")

    async def _follow(self) -> None:
        backoff = Backoff(0.5, 10.0)
        while True:
            try:
                if self.status != "ok":
                    await self._resync()
                    backoff.reset()
                reply = await self.redis.xread({self.stream: self.last}, count=READ_COUNT, block=1000)
                for _stream, entries in reply or []:
                    for raw_id, fields in entries:
                        pos = raw_id.decode()
                        self.last = pos
                        key = pos_key(pos)
                        self.recent.seen(key)
                        for data in _messages(fields):  # decoded once per hub, whatever the viewers
                            entry = Entry(pos, key[0] / 1000, data)
                            if data.get("k") == "e":
                                self.recent.add(key, entry)
                            self.on_entry(entry)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.down(exc)
                await asyncio.sleep(backoff.next())

    async def _resync(self) -> None:
        """Back after an outage: if the stream still holds our position, go on; else reload the board."""
        here = await self.redis.xrange(self.stream, min=self.last, max=self.last) if self.last != "0-0" else []
        if here:
            log.warning("redis at %s is back; following the stream from where this hub was", self.url)
            self.status = "ok"
            self.on_status("ok")
            return
        if not self._reloading:  # a reload that fails half-way is tried again, but said once
            log.warning("redis at %s is back without this hub's position; reloading the board", self.url)
        self._reloading = True
        self.on_reset()
        await self._load()

    async def publish(self, items: list[dict[str, Any]]) -> None:
        """Append the items to the stream, in order, as entries of up to WRITE_MAX messages (one XADD each, all in
        one round trip); raises when Redis is down. Every hub folds an entry's messages in their order, all at
        the entry's time."""
        # Trimmed by Redis's clock (the last position read), not this hub's: a hub whose clock runs ahead must not
        # empty the stream.
        newest = pos_key(self.last)[0]
        keep = f"{newest - int(STREAM_KEEP_S * 1000)}-0" if newest > STREAM_KEEP_S * 1000 else None
        pipe = self.redis.pipeline(transaction=False)
        for start in range(0, len(items), WRITE_MAX):
            chunk = items[start:start + WRITE_MAX]
            pipe.xadd(self.stream, {"ms": encode(chunk)}, minid=keep, approximate=True)
        await pipe.execute()

    async def since(self, pos: str, upto: str | None) -> list[Entry] | None:
        """Entries after `pos` up to `upto` (what this hub has folded; from memory, only the events, which is what a
        resume reads), or None when `pos` was trimmed."""
        if upto is None or pos_key(pos) > pos_key(upto):
            return None
        remembered = self.recent.after(pos_key(pos), pos_key(upto))
        if remembered is not None:
            return remembered
        first = await self.redis.xrange(self.stream, count=1)
        if not first or pos_key(first[0][0].decode()) > pos_key(pos):
            return None
        out: list[Entry] = []
        cursor = "(" + pos
        while len(out) <= RESUME_MAX:
            batch = await self.redis.xrange(self.stream, min=cursor, max=upto, count=READ_COUNT)
            for raw_id, fields in batch:
                p = raw_id.decode()
                out += [Entry(p, pos_key(p)[0] / 1000, data) for data in _messages(fields)]
                cursor = "(" + p
            if len(batch) < READ_COUNT:
                return out
        return None

    async def save(self, calls: dict[str, tuple[dict[str, Any] | None, str]]) -> None:
        """Write the calls this hub took entries for: call id -> (export or None when it left, position).

        In pipelines of SAVE_CHUNK calls, each sent before the next is serialised, so a hub with thousands of
        calls never holds its loop (and its viewers' frames) for the whole lot at once."""
        items = list(calls.items())
        for start in range(0, len(items), SAVE_CHUNK):
            pipe = self.redis.pipeline(transaction=False)
            saved, gone = [], []
            for call_id, (export, pos) in items[start:start + SAVE_CHUNK]:
                key = self._key(call_id)
                if export is None:
                    pipe.delete(key)
                    gone.append(call_id)
                    continue
                pipe.hset(key, mapping={"pos": pos, "call": encode(export)})
                ttl = self.remove_after_s if export.get("ended_at") is not None else self.forget_stale_s
                pipe.expire(key, max(1, int(ttl + 1)))
                saved.append(call_id)
            if saved:
                pipe.sadd(PREFIX + "calls", *saved)
            if gone:
                pipe.srem(PREFIX + "calls", *gone)
            await pipe.execute()

    async def stop(self) -> None:
        """Stop following the stream and close the connection pool."""
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
        await self.redis.aclose()


def _messages(fields: dict[bytes, bytes]) -> list[dict[str, Any]]:
    """The messages of one stream entry, in order (an entry from a hub before batching holds one, as "m")."""
    raw = fields.get(b"ms")
    items = orjson.loads(raw) if raw is not None else [orjson.loads(fields[b"m"])] if b"m" in fields else []
    return [m for m in items if isinstance(m, dict)] if isinstance(items, list) else []


def _why(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:120]
