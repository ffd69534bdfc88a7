"""Whether hostile words are aimed at the agent, or at the company, a thing, the weather.

Abuse of the agent calls for a boundary; exasperation at a website or swearing about the line does
not. A clause (text between punctuation, as Whisper writes it) addresses the agent when it has a
second-person word that is not part of a stock phrase ("are you kidding me", "you know", "thank
you"); "your" alone points at a thing ("your website"), not at the agent.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .lexicon import normalise

_CLAUSE = re.compile(r"[,.;:!?\u2014]| - ")
_YOU = frozenset({"you", "ya", "u", "yourself"})
_ASIDE_AFTER = frozenset({"know", "kidding", "joking", "believe", "see"})
_ASIDE_BEFORE = frozenset({"thank", "if"})


def clauses(text: str) -> list[str]:
    """The utterance's clauses, split at punctuation."""
    return [c for c in _CLAUSE.split(text) if c.strip()]


def addressed(text: str) -> bool:
    """The text speaks to the agent: a second-person word outside the stock phrases."""
    words = normalise(text).split()
    for i, w in enumerate(words):
        if w in _YOU:
            before, after = words[i - 1] if i else "", words[i + 1] if i + 1 < len(words) else ""
            if after not in _ASIDE_AFTER and before not in _ASIDE_BEFORE:
                return True
    return False


def aimed_at_agent(text: str, insult: bool, swear: str, model_says: Callable[[str], bool] | None) -> bool:
    """Abuse of the agent: an insult; a swear word (`swear`, "" if none) in a clause that addresses
    them; or, with no swear word, a clause that addresses them and that the text model finds abusive
    (`model_says`, None when the whole utterance is not abusive to the model)."""
    if insult:
        return True
    if swear:
        return any(swear in normalise(c) and addressed(c) for c in clauses(text))
    return model_says is not None and any(addressed(c) and model_says(c) for c in clauses(text))
