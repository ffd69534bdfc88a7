"""Redaction of personal data in transcripts, before anything leaves the agent's process.

What goes: card numbers (13–19 digits passing the Luhn check), US social security numbers, phone
numbers, e-mail addresses (written, mis-spaced "jo.smith @ gmail. com", or spoken "jo dot smith
at gmail dot com", "jo at the rate gmail dot com"), bank sort codes (two digits three times),
IBANs, and any other string of digits read out one by one ("four one one one", "4, 1, 1, 1") or of
seven digits or more (account and policy numbers), or of four or more after a reference's capitals
("ML-4 482", "QC 5512"; a year stays). Each is replaced by a label in brackets:
[card], [ssn], [phone], [email], [sort_code], [account], [digits]. Numbers in ordinary speech stay,
because they carry no identity and QA needs them: short ones ("3 days", "2024"), amounts of money
("$12,499.00", "1,250,000 dollars"), dates ("1/10/2017") and counting ("one, two, three, four").
The same function serves every sink and `callmon redact`; its recall and false positives are
measured on tests/fixtures/redaction (docs/EVALUATION.md).

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
# Top-level domains an address may end in: a spoken domain must end in one, so "at home dot" stays.
_TLD = r"(?:com|org|net|edu|gov|io|co|uk|us|ca|au|de|fr|es|it|nl|ie|in|ru|info|biz|me|uk)"
_USER = r"[\w.+'-]+(?:\s+(?:dot|underscore|dash|hyphen)\s+[\w'-]+)*"
_AT = r"(?:\s*@\s*|\s+at\s+(?:the\s+rate\s+(?:of\s+)?)?)"
_DOMAIN = rf"[\w-]+(?:\s*(?:\.|\bdot\b)\s*[\w-]+)*?(?:\s*(?:\.|\bdot\b)\s*{_TLD}\b)+"
_EMAIL = re.compile(rf"(?<![\w.@])(?!(?:at|me|to|is|email|address)\b){_USER}{_AT}{_DOMAIN}", re.IGNORECASE)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,3})?\b")
_SSN = re.compile(r"^\d{3}[\s-]\d{2}[\s-]\d{4}$")
_SORT_CODE = re.compile(r"^\d{2}(?:[\s,.-]+\d{2}){2}$")
_DATE = re.compile(r"^\d{1,2}/\d{1,2}/\d{2,4}$")
_AMOUNT = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d{2})?$|^\d+\.\d{2}$")
_YEAR = re.compile(r"^(?:19|20)\d\d$")  # "the UK 2024 budget" keeps its year
_CODE_PREFIX = re.compile(r"(?:^|[^A-Za-z])[A-Z]{1,3}[\s-]{0,2}$")  # capitals just before a digit run (3 chars seen)
_MONEY_AFTER = re.compile(r"^\s*(?:dollars|pounds|euros|bucks|quid|cents|pence|percent|%|k\b|million|thousand)", re.IGNORECASE)


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


def _counting(digits: str, tokens: int) -> bool:
    """Counting up to five ("1, 2, 3, 4", "one two three four five"): one digit per token, each one more.

    Longer runs are read-out numbers even when they ascend ("one two three four five six" is an account).
    """
    return tokens == len(digits) <= 5 and all(int(b) - int(a) == 1 for a, b in zip(digits, digits[1:], strict=False))


def _label(run: str, before: str = "", after: str = "") -> str | None:
    """What a digit run is, or None when it is an ordinary number to keep (`before`/`after`: the text around it)."""
    digits, tokens = _digits_of(run)
    stripped = run.strip(" ,.-/()")
    if not digits:
        return None
    if _SSN.match(stripped):
        return "[ssn]"
    if 13 <= len(digits) <= 19 and luhn_ok(digits):
        return "[card]"
    if _DATE.match(stripped) or _counting(digits, tokens):
        return None
    if _AMOUNT.match(stripped) and (before.rstrip().endswith(("$", "£", "€")) or _MONEY_AFTER.match(after)):
        return None  # money: "$12,499.00", "3,415,000 dollars"
    if before.rstrip().endswith(("$", "£", "€")) and len(digits) <= 9:
        return None
    if _SORT_CODE.match(stripped):
        return "[sort_code]"
    if stripped.startswith("+") and len(digits) >= 7 or len(digits) in (10, 11) and tokens >= 2:
        return "[phone]"
    if len(digits) >= 7:
        return "[digits]"
    # A reference read out after its letters ("ML-4 482", "QC 5512"): Whisper groups the digits as it likes.
    if len(digits) >= 4 and _CODE_PREFIX.search(before) and not (tokens == 1 and _YEAR.match(digits)):
        return "[digits]"
    has_words = any(not t.isdigit() for t in re.findall(_TOKEN, run, re.IGNORECASE))
    # Read out one by one: four or more separate digits ("4 1 1 1", "four one one one").
    if len(digits) >= 4 and tokens >= 4 and (has_words or all(len(t) == 1 for t in re.findall(r"\d+", run))):
        return "[digits]"
    return None


def _spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, label) of everything to redact in `text`, in order, not overlapping."""
    found: list[tuple[int, int, str]] = [(m.start(), m.end(), "[email]") for m in _EMAIL.finditer(text)]
    found += [(m.start(), m.end(), "[account]") for m in _IBAN.finditer(text)
              if not any(s < m.end() and m.start() < e for s, e, _ in found)]
    for m in _RUN.finditer(text):
        label = _label(m.group(), text[max(0, m.start() - 3):m.start()], text[m.end():m.end() + 12])
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
