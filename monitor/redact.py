"""Redaction of personal data in transcripts, before anything leaves the agent's process.

What goes: card numbers (13–19 digits passing the Luhn check), US social security numbers, phone
numbers, e-mail addresses (written or spoken: "jo at example dot com"), and any other string of
digits read out one by one ("four one one one", "4, 1, 1, 1") or of seven digits or more
(account and policy numbers). Each is replaced by a label in brackets: [card], [ssn], [phone],
[email], [digits]. Short numbers in ordinary speech ("3 days", "2024", "$45") stay, because
they carry no identity and QA needs them.

Whisper writes spoken digits in many ways (numerals, words, grouped with spaces, commas or
dashes), so digit runs are found as one sequence of digit tokens and classified afterwards.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from .events import Event, Nudge, TranscriptPartial, Word

_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
_REPEAT = {"double": 2, "triple": 3}
_TOKEN = r"(?:\d+|" + "|".join(sorted(_DIGIT_WORDS, key=len, reverse=True)) + r"|double|triple)"
# A run of digit tokens joined by spaces, commas, dots, dashes, slashes or brackets; an optional leading "+".
_RUN = re.compile(rf"(?<![\w@])\+?\(?{_TOKEN}(?:\)?[\s,.\-/]*\(?{_TOKEN})*\)?(?![\w@])", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_SPOKEN_EMAIL = re.compile(
    r"\b[\w.'-]+(?:\s+(?:dot|underscore|dash)\s+[\w'-]+)*\s+at\s+[\w-]+(?:\s+dot\s+[\w-]+)+\b", re.IGNORECASE
)
_SSN = re.compile(r"^\d{3}[\s-]\d{2}[\s-]\d{4}$")


def luhn_ok(digits: str) -> bool:
    """True when the digit string passes the Luhn check that card numbers carry."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _digits_of(run: str) -> tuple[str, int]:
    """The digits a run spells, and how many separate tokens spelled them."""
    out: list[str] = []
    repeat = 1
    tokens = re.findall(_TOKEN, run, re.IGNORECASE)
    for tok in tokens:
        low = tok.lower()
        if low in _REPEAT:
            repeat = _REPEAT[low]
            continue
        digits = tok if tok.isdigit() else _DIGIT_WORDS[low]
        out.append(digits * repeat if len(digits) == 1 else digits)
        repeat = 1
    return "".join(out), len(tokens)


def _label(run: str) -> str | None:
    """What a digit run is, or None when it is an ordinary number to keep."""
    digits, tokens = _digits_of(run)
    stripped = run.strip(" ,.-/()")
    if not digits:
        return None
    if _SSN.match(stripped):
        return "[ssn]"
    if 13 <= len(digits) <= 19 and luhn_ok(digits):
        return "[card]"
    if stripped.startswith("+") and len(digits) >= 7 or len(digits) in (10, 11) and tokens >= 2:
        return "[phone]"
    if len(digits) >= 7:
        return "[digits]"
    has_words = any(not t.isdigit() for t in re.findall(_TOKEN, run, re.IGNORECASE))
    # Read out one by one: four or more separate digits ("4 1 1 1", "four one one one").
    if len(digits) >= 4 and tokens >= 4 and (has_words or all(len(t) == 1 for t in re.findall(r"\d+", run))):
        return "[digits]"
    return None


def _spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, label) of everything to redact in `text`, in order, not overlapping."""
    found: list[tuple[int, int, str]] = []
    for rx in (_EMAIL, _SPOKEN_EMAIL):
        found += [(m.start(), m.end(), "[email]") for m in rx.finditer(text)]
    for m in _RUN.finditer(text):
        label = _label(m.group())
        if label and not any(s < m.end() and m.start() < e for s, e, _ in found):
            # Keep the separators around the run (a trailing comma or full stop) in the text.
            lead = len(m.group()) - len(m.group().lstrip(" ,.-/"))
            trail = len(m.group()) - len(m.group().rstrip(" ,.-/"))
            found.append((m.start() + lead, m.end() - trail, label))
    return sorted(found)


def redact_text(text: str) -> str:
    """`text` with personal data replaced by labels such as [card] and [phone]."""
    out, pos = [], 0
    for start, end, label in _spans(text):
        out += [text[pos:start], label]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _redact_words(words: list[Word]) -> list[Word]:
    """Words with each redacted span folded into one word carrying the label and the span's times."""
    if not words:
        return words
    joined, bounds = "", []
    for w in words:
        start = len(joined) + (1 if joined else 0)
        joined += (" " if joined else "") + w.w
        bounds.append((start, len(joined)))
    spans = _spans(joined)
    if not spans:
        return words
    out: list[Word] = []
    i = 0
    for start, end, label in spans:
        while i < len(words) and bounds[i][1] <= start:
            out.append(words[i])
            i += 1
        first = i
        while i < len(words) and bounds[i][0] < end:
            i += 1
        if i > first:
            # A span starting inside a word ("card:4111…") keeps that word's text before the span.
            head = joined[bounds[first][0]:start].strip()
            out.append(Word(f"{head} {label}".strip(), words[first].start, words[i - 1].end, words[first].p))
    out += words[i:]
    return out


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v) for v in value]
    return value


def redact_event(event: Event) -> Event:
    """The event with its transcript text, words and nudge quotes redacted (other events unchanged)."""
    if isinstance(event, TranscriptPartial):
        return replace(event, text=redact_text(event.text), words=_redact_words(event.words))
    if isinstance(event, Nudge):
        return replace(
            event, message=redact_text(event.message), reason=redact_text(event.reason),
            evidence=_redact_value(event.evidence),
        )
    return event
