"""What the hub accepts from a client: JSON parsed safely, every event field checked by type and range.

An agent's message touches the floor's state (and every viewer's screen) only after `check_event` found
nothing wrong with it. Each rule here was found by attacking the hub: `t: Infinity` (a snapshot the
browser's `JSON.parse` rejects), a string where a number belongs, an object where text belongs, markup in
a kind, JSON nested ten thousand deep (a RecursionError per message). Text lengths are bounded so one
agent token can only put a bounded amount on the board (see `MAX_CALL_BYTES` in state.py).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from ..events import SCHEMA_VERSION

MAX_TEXT = 500  # characters of one transcript line the board keeps
MAX_SHORT = 200  # a nudge message or reason, a supervisor note, a whisper, an error text
MAX_WORDS = 200  # word timings in one transcript event (the board does not show them)
MAX_DEPTH = 6  # nesting of a free-form object (call.started roles, nudge evidence)
MAX_T = 1e6  # call seconds (11 days): anything later is a broken clock
KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")  # a nudge kind: it names a CSS class and a key on the boards
ID = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")  # call ids, nudge ids, agent ids

ROLES = ("agent", "customer")
SEVERITIES = ("info", "warn", "critical")
CLEARED_HOW = ("resolved", "dismissed", "expired")
ROLE_METRICS_NUMBERS = ("loudness_lufs", "loudness_above_baseline_db", "pace_wpm", "pace_sps", "hostility", "sentiment",
                        "agitation")


class Invalid(ValueError):
    """A message the hub drops: one line saying what is wrong."""


def _no_constants(name: str) -> Any:
    raise Invalid(f"{name} is not a number JSON allows")


# orjson takes the messages too short to nest near the standard decoder's recursion limit (each level costs two
# bytes; metrics, most of what agents send, are about 400); it refuses NaN, Infinity and numbers that overflow, which
# then go to the standard decoder to be named.
FAST_MAX = 1500
# One decoder for every message: json.loads(raw, parse_constant=...) builds a new decoder and scanner per call,
# which cost as much as the parsing itself.
_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def loads(raw: str | bytes) -> Any:
    """A client's message parsed; Invalid for anything that is not plain JSON (NaN, Infinity, too deep)."""
    if len(raw) < FAST_MAX:
        try:  # what the standard decoder would give, much sooner; anything it would refuse goes on to it, for its words
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    try:
        if not isinstance(raw, str):
            raw = raw.decode(json.detect_encoding(raw), "surrogatepass")
        return _DECODER.decode(raw)
    except Invalid:
        raise
    except RecursionError:
        raise Invalid("nested too deeply") from None
    except (ValueError, TypeError):
        raise Invalid("not JSON") from None


def _number(data: dict[str, Any], key: str, lo: float, hi: float, *, optional: bool = False) -> None:
    value = data.get(key)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(f"{key} must be a number, got {type(value).__name__}")
    if not (math.isfinite(value) and lo <= value <= hi):
        raise Invalid(f"{key} must be from {lo:g} to {hi:g}, got {value!r}")


def _int(data: dict[str, Any], key: str, lo: int, hi: int, *, optional: bool = False) -> None:
    value = data.get(key)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise Invalid(f"{key} must be a whole number from {lo} to {hi}, got {value!r}"[:MAX_SHORT])


def _text(data: dict[str, Any], key: str, limit: int = MAX_SHORT, *, optional: bool = False) -> None:
    value = data.get(key)
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise Invalid(f"{key} must be text, got {type(value).__name__}")
    if len(value) > limit:
        raise Invalid(f"{key} is longer than {limit} characters")


def _choice(data: dict[str, Any], key: str, allowed: tuple[str, ...]) -> None:
    if data.get(key) not in allowed:
        raise Invalid(f"{key} must be one of {', '.join(allowed)}, got {str(data.get(key))[:40]!r}")


def _pattern(data: dict[str, Any], key: str, pattern: re.Pattern[str], what: str, *, empty: bool = False) -> None:
    value = data.get(key)
    if empty and value == "":
        return
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise Invalid(f"{key} must be {what}, got {str(value)[:40]!r}")


def _bool(data: dict[str, Any], key: str, *, optional: bool = True) -> None:
    value = data.get(key)
    if (value is None and optional) or isinstance(value, bool):
        return
    raise Invalid(f"{key} must be true or false")


def depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of a parsed JSON value, counting no further than `limit` + 1."""
    if limit < 0:
        return 1
    if isinstance(value, dict):
        return 1 + max((depth(v, limit - 1) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v, limit - 1) for v in value), default=0)
    return 0


def _object(data: dict[str, Any], key: str, *, optional: bool = False) -> None:
    value = data.get(key)
    if value is None and optional:
        return
    if not isinstance(value, dict):
        raise Invalid(f"{key} must be an object, got {type(value).__name__}")
    if depth(value) > MAX_DEPTH:
        raise Invalid(f"{key} is nested deeper than {MAX_DEPTH}")
    if not _finite(value):  # 1e400 parses as infinity: the hub could not write it to Redis or a snapshot
        raise Invalid(f"{key} holds a number JSON cannot carry")


def _finite(value: Any) -> bool:
    """Whether every number in a parsed JSON value (of bounded depth) is finite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def check_event(data: Any) -> None:
    """Raise Invalid (one line) unless `data` is a schema-1 event every field of which is in range.

    Field names and required fields are checked after this by `events.event_from_dict`.
    """
    if not isinstance(data, dict):
        raise Invalid("a message is a JSON object")
    if data.get("schema") != SCHEMA_VERSION:
        raise Invalid(f"schema {str(data.get('schema'))[:20]!r} is not {SCHEMA_VERSION}")
    kind = data.get("type")
    check = _CHECKS.get(kind) if isinstance(kind, str) else None
    if check is None:
        raise Invalid(f"unknown event type {str(kind)[:40]!r}")
    _pattern(data, "call_id", ID, "letters, digits and _ . : @ - (at most 64)")
    _number(data, "t", 0.0, MAX_T)
    _number(data, "wall", -MAX_T, MAX_T)
    check(data)


def _started(d: dict[str, Any]) -> None:
    _pattern(d, "agent_id", ID, "an agent id")
    _object(d, "roles")
    _object(d, "diarization", optional=True)
    _int(d, "sample_rate", 1, 768_000)
    _text(d, "source")
    _text(d, "model")


def _transcript(d: dict[str, Any]) -> None:
    _choice(d, "role", ROLES)
    _text(d, "text", MAX_TEXT)
    _number(d, "start", -MAX_T, MAX_T)
    _number(d, "end", -MAX_T, MAX_T)
    _bool(d, "pause")
    words = d.get("words", [])
    if not isinstance(words, list) or len(words) > MAX_WORDS:
        raise Invalid(f"words must be a list of at most {MAX_WORDS}")
    for word in words:
        if not isinstance(word, dict) or set(word) != {"w", "start", "end", "p"}:
            raise Invalid("each word is {w, start, end, p}")
        _text(word, "w", 100)
        _number(word, "start", -MAX_T, MAX_T)
        _number(word, "end", -MAX_T, MAX_T)
        _number(word, "p", 0.0, 1.0)


_NUM = (int, float)  # exact types: a bool is not a number here; a range test is False for NaN, and infinities fail it
_METRICS_KEYS = frozenset({"schema", "type", "call_id", "t", "wall", "roles", "overlap", "silence_s", "heat",
                           "interruptions", "talk_ratio"})
_ROLE_NUMBERS = frozenset(ROLE_METRICS_NUMBERS)


def metrics_ok(d: dict[str, Any]) -> bool:
    """Whether a metrics event (most of what agents send) is good, checked quickly: True only when every field
    is known and in range, as `check_event` and `events.event_from_dict` would find. False means "look
    closer": `check_event` then says what is wrong (or accepts what this strict path did not expect)."""
    if not d.keys() <= _METRICS_KEYS or d.get("schema") != SCHEMA_VERSION:
        return False
    call_id, t, wall = d.get("call_id"), d.get("t"), d.get("wall")
    if (type(call_id) is not str or not ID.fullmatch(call_id) or type(t) not in _NUM or not 0.0 <= t <= MAX_T
            or type(wall) not in _NUM or not -MAX_T <= wall <= MAX_T):
        return False
    roles = d.get("roles")
    if type(roles) is not dict or len(roles) > 2:
        return False
    for name, role in roles.items():
        if name not in ROLES or type(role) is not dict:
            return False
        for key, value in role.items():
            if key in _ROLE_NUMBERS:
                if value is not None and (type(value) not in _NUM or not -1e4 <= value <= 1e4):
                    return False
            elif key != "speaking" or type(value) is not bool:
                return False
    silence, heat, interruptions, ratio = d.get("silence_s"), d.get("heat"), d.get("interruptions"), d.get("talk_ratio")
    return (type(d.get("overlap")) is bool and type(silence) in _NUM and 0.0 <= silence <= MAX_T
            and (heat is None or (type(heat) is int and 0 <= heat <= 3))
            and (interruptions is None or (type(interruptions) is int and 0 <= interruptions <= 1_000_000))
            and (ratio is None or (type(ratio) in _NUM and 0.0 <= ratio <= 1.0)))


def _metrics(d: dict[str, Any]) -> None:
    roles = d.get("roles")
    if not isinstance(roles, dict) or not set(roles) <= set(ROLES):
        raise Invalid("roles must be an object with agent and/or customer")
    for role in roles.values():
        if not isinstance(role, dict) or not set(role) <= {*ROLE_METRICS_NUMBERS, "speaking"}:
            raise Invalid(f"a role's metrics may hold only {', '.join(ROLE_METRICS_NUMBERS)}, speaking")
        for key in ROLE_METRICS_NUMBERS:
            _number(role, key, -1e4, 1e4, optional=True)
        _bool(role, "speaking")
    _bool(d, "overlap", optional=False)
    _number(d, "silence_s", 0.0, MAX_T)
    _int(d, "heat", 0, 3, optional=True)
    _int(d, "interruptions", 0, 1_000_000, optional=True)
    _number(d, "talk_ratio", 0.0, 1.0, optional=True)


def _nudge(d: dict[str, Any]) -> None:
    _pattern(d, "id", ID, "a nudge id")
    _pattern(d, "kind", KIND, "a nudge kind (lower-case letters, digits, _)")
    _choice(d, "severity", SEVERITIES)
    _text(d, "message")
    _text(d, "reason")
    _object(d, "evidence", optional=True)


def _cleared(d: dict[str, Any]) -> None:
    _pattern(d, "id", ID, "a nudge id")
    _choice(d, "how", CLEARED_HOW)
    if "kind" in d:
        _pattern(d, "kind", KIND, "a nudge kind", empty=True)
    _bool(d, "followed")
    _number(d, "follow_s", 0.0, MAX_T, optional=True)


def _ended(d: dict[str, Any]) -> None:
    _number(d, "duration", 0.0, MAX_T)
    _int(d, "peak_heat", 0, 3, optional=True)
    _int(d, "nudges_raised", 0, 1_000_000)
    _int(d, "nudges_followed", 0, 1_000_000)
    _number(d, "talk_ratio", 0.0, 1.0, optional=True)
    _text(d, "error", optional=True)


def _status(d: dict[str, Any]) -> None:
    _pattern(d, "state", KIND, "a state word")
    _text(d, "message", optional=True)
    _int(d, "overflows", 0, 10**9, optional=True)


def _note(d: dict[str, Any]) -> None:
    _text(d, "note", optional=True)


_CHECKS = {
    "call.started": _started,
    "transcript.partial": _transcript,
    "transcript.final": _transcript,
    "metrics": _metrics,
    "nudge": _nudge,
    "nudge.cleared": _cleared,
    "call.ended": _ended,
    "status": _status,
    "supervisor.requested": _note,
    "bookmark": _note,
}
