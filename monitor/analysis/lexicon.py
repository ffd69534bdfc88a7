"""The intent lexicon: phrase patterns per category, loaded from `models/lexicon.toml`.

The patterns are data so that QA can extend them without touching code; this module only
compiles them (word-list macros, `*` suffix wildcards, word boundaries) and matches them
against normalised transcript text.
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
        sentiment = data.get("sentiment", {})
        self._positive = re.compile(r"\b(?:" + "|".join(_fragment(w) for w in sentiment.get("positive", ["$^"])) + r")\b")
        self._negative = re.compile(r"\b(?:" + "|".join(_fragment(w) for w in sentiment.get("negative", ["$^"])) + r")\b")

    @classmethod
    def load(cls, path: Path | None = None) -> Lexicon:
        """Read and compile a lexicon file (default: the project's `models/lexicon.toml`)."""
        with (path or DEFAULT_PATH).open("rb") as fh:
            return cls(tomllib.load(fh))

    def match(self, text: str, role: str | None = None) -> list[Match]:
        """Every category hit in `text` (normalised here), optionally only one role's categories."""
        norm = normalise(text)
        hits = []
        for cat in self.categories.values():
            if role is not None and cat.role != role:
                continue
            for m in cat.regex.finditer(norm):
                first = norm[: m.start()].count(" ")
                hits.append(Match(cat.name, m.group(0), first, first + m.group(0).count(" ")))
        return hits

    def valence(self, text: str) -> tuple[int, int]:
        """Counts of positive and negative words."""
        norm = normalise(text)
        return len(self._positive.findall(norm)), len(self._negative.findall(norm))


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The project's lexicon, compiled once."""
    return Lexicon.load()
