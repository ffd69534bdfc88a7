"""The intent lexicon: phrase patterns per category, loaded from `models/lexicon.toml`.

The patterns are data so that QA can extend them without touching code; this module only
compiles them (word-list macros, `*` suffix wildcards, word boundaries) and matches them
against normalised transcript text.

Near misses: tiny.en often hears a trigger word as a similar one ("manger", "super visor",
"use less"). The `[fuzzy]` table names the trigger terms that may be reached that way. A heard
word is a near miss of a term when it is not the term, is at least `min_length` letters long,
and either sounds the same (`sound_key`, a coarse Metaphone-like key of at least 4 consonants:
shorter keys are shared by too many ordinary words) or is one edit away (two for terms of 8
letters or more); two heard words are when, written together, they are the term or one edit
from it. A near miss counts only inside a whole pattern: the text is matched once more with near
misses replaced by their terms, and only hits that span two or more words, include a replaced
word and were not already found are added (`Match.near_miss`); a lone misheard word never
matches. Words on `[fuzzy] never` are never replaced. The analyzer's word-confidence guard
applies to these hits as to any other.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..resources import project_file

DEFAULT_PATH = project_file("models/lexicon.toml")

CUSTOMER_CATEGORIES = (
    "insult", "profanity", "legal_threat", "violent_threat", "manager_request", "churn_threat", "exasperation",
)
AGENT_CATEGORIES = ("acknowledgement", "boundary", "supervisor_handoff", "blame", "poor_apology", "overpromise", "summary")


@dataclass(frozen=True)
class Match:
    """One category hit: the words matched and where (word indices into the normalised text)."""

    category: str
    phrase: str
    first_word: int
    last_word: int
    near_miss: bool = False  # found only after a misheard word was read as a trigger term


@dataclass(frozen=True)
class Category:
    """A compiled category."""

    name: str
    role: str
    weight: float
    regex: re.Pattern[str]


def normalise(text: str) -> str:
    """Lower case, apostrophes to spaces ("you're" -> "you re"), punctuation dropped but `*` kept."""
    text = text.lower().replace("’", "'").replace("'", " ")
    return " ".join(re.sub(r"[^a-z0-9* ]+", " ", text).split())


_SOUND_RULES = [
    (r"^(kn|gn|pn|wr)", lambda m: m.group(0)[1]), (r"^x", "s"), (r"ph", "f"), (r"[cs]h", "x"),
    (r"tch", "x"), (r"th", "0"), (r"ck", "k"), (r"c(?=[eiy])", "s"), (r"dg", "j"), (r"gh", ""),
    (r"q", "k"), (r"c", "k"), (r"x", "ks"), (r"z", "s"), (r"v", "f"), (r"d", "t"), (r"b", "p"),
    (r"g", "k"), (r"j", "k"), (r"(?<!^)[aeiouhwy]", ""), (r"(.)\1+", r"\1"),
]


@lru_cache(maxsize=1024)
def sound_key(word: str) -> str:
    """A coarse sound-alike key: consonant skeleton, voiced and unvoiced pairs merged ("manger" = "manager")."""
    key = re.sub(r"[^a-z]", "", word.lower())
    for pattern, repl in _SOUND_RULES:
        key = re.sub(pattern, repl, key)
    return re.sub(r"^[aeiouy]", "a", key)


def edit_distance(a: str, b: str, limit: int = 2) -> int:
    """Levenshtein distance, cut off at limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


@dataclass(frozen=True)
class NearMisses:
    """Which heard words may stand for which trigger terms (the `[fuzzy]` table)."""

    terms: tuple[str, ...] = ()
    min_length: int = 4
    never: frozenset[str] = frozenset()

    @lru_cache(maxsize=8192)  # noqa: B019 - one NearMisses per lexicon, kept for the process
    def term_for(self, word: str) -> str | None:
        """The trigger term `word` is a near miss of, or None."""
        if len(word) < self.min_length or word in self.never or word in self.terms or not word.isalpha():
            return None
        key = sound_key(word)
        for term in self.terms:
            if len(key) >= 4 and key == sound_key(term):
                return term
            if edit_distance(word, term) <= (2 if len(term) >= 8 else 1):
                return term
        return None

    @lru_cache(maxsize=8192)  # noqa: B019 - as term_for
    def term_for_pair(self, first: str, second: str) -> str | None:
        """The trigger term two heard words make together ("use less", "super visor"), or None.

        Stricter than one word: the two written together must be the term or one edit from it.
        """
        joined = first + second
        if min(len(first), len(second)) < 2 or not joined.isalpha() or f"{first} {second}" in self.never:
            return None
        return next((t for t in self.terms if edit_distance(joined, t, 1) <= 1), None)

    def repair(self, words: list[str]) -> list[tuple[str, int, int, bool]]:
        """(word, first heard index, last heard index, replaced?) with near misses read as their terms."""
        out, i = [], 0
        while i < len(words):
            pair = self.term_for_pair(words[i], words[i + 1]) if i + 1 < len(words) else None
            if pair:
                out.append((pair, i, i + 1, True))
                i += 2
                continue
            term = self.term_for(words[i])
            out.append((term or words[i], i, i, term is not None))
            i += 1
        return out


def _fragment(entry: str) -> str:
    entry = entry.replace("'", " ")
    return entry[:-1] + r"\w*" if entry.endswith("*") and not entry.endswith("\\*") else entry


class Lexicon:
    """All categories; `match` finds every hit in one utterance."""

    def __init__(self, data: dict) -> None:
        words = {k: "(?:" + "|".join(_fragment(w) for w in v) + ")" for k, v in data.get("words", {}).items()}
        self.categories: dict[str, Category] = {}
        for name, spec in data.get("categories", {}).items():
            parts = []
            for pattern in spec["patterns"]:
                expanded = re.sub(r"\{(\w+)\}", lambda m: words[m.group(1)], pattern.replace("'", " "))
                parts.append(f"(?:{expanded})")
            regex = re.compile(r"(?<![\w*])(?:" + "|".join(parts) + r")(?![\w*])")
            self.categories[name] = Category(name, spec.get("role", "customer"), float(spec.get("weight", 0.0)), regex)
        fuzzy = data.get("fuzzy", {})
        self.near = NearMisses(
            tuple(normalise(t) for t in fuzzy.get("terms", [])),
            int(fuzzy.get("min_length", 4)),
            frozenset(normalise(w) for w in fuzzy.get("never", [])),
        )
        sentiment = data.get("sentiment", {})
        self._positive = re.compile(r"\b(?:" + "|".join(_fragment(w) for w in sentiment.get("positive", ["$^"])) + r")\b")
        self._negative = re.compile(r"\b(?:" + "|".join(_fragment(w) for w in sentiment.get("negative", ["$^"])) + r")\b")

    @classmethod
    def load(cls, path: Path | None = None) -> Lexicon:
        """Read and compile a lexicon file (default: the project's `models/lexicon.toml`)."""
        with (path or DEFAULT_PATH).open("rb") as fh:
            return cls(tomllib.load(fh))

    def match(self, text: str, role: str | None = None) -> list[Match]:
        """Every category hit in `text` (normalised here), optionally only one role's categories.

        Hits that need a near miss read as its trigger term come after the exact ones, marked
        `near_miss`; their word indices are the heard text's (one word is replaced by one word).
        """
        norm = normalise(text)
        cats = [c for c in self.categories.values() if role is None or c.role == role]
        hits = [h for c in cats for h in _find(c, norm)]
        words = norm.split()
        repaired = self.near.repair(words)
        if not any(r[3] for r in repaired):
            return hits
        fixed = " ".join(r[0] for r in repaired)
        seen = {(h.category, h.first_word) for h in hits}
        for cat in cats:
            for h in _find(cat, fixed):
                span = repaired[h.first_word : h.last_word + 1]
                first, last = span[0][1], span[-1][2]
                if last > first and any(r[3] for r in span) and (cat.name, first) not in seen:
                    hits.append(Match(cat.name, " ".join(words[first : last + 1]), first, last, near_miss=True))
        return hits

    def valence(self, text: str) -> tuple[int, int]:
        """Counts of positive and negative words."""
        norm = normalise(text)
        return len(self._positive.findall(norm)), len(self._negative.findall(norm))


def _find(cat: Category, norm: str) -> list[Match]:
    hits = []
    for m in cat.regex.finditer(norm):
        first = norm[: m.start()].count(" ")
        hits.append(Match(cat.name, m.group(0), first, first + m.group(0).count(" ")))
    return hits


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The project's lexicon, compiled once."""
    return Lexicon.load()
