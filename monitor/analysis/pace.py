"""Speaking pace from word timings: words per minute and syllables per second over recent speech."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from ..events import Word

_VOWELS = re.compile(r"[aeiouy]+")


def syllables(word: str) -> int:
    """Syllables in an English word by vowel groups (good to ~10 %, enough for a pace meter)."""
    w = re.sub(r"[^a-z]", "", word.lower())
    if not w:
        return 1 if any(ch.isdigit() for ch in word) else 0
    n = len(_VOWELS.findall(w))
    if w.endswith("e") and not w.endswith(("le", "ee", "ye")) and n > 1:
        n -= 1  # silent e: "make", "were"
    return max(1, n)


@dataclass(frozen=True)
class _Span:
    end: float
    duration: float
    words: int
    syllables: int


def span_of(words: list[Word]) -> _Span | None:
    """One utterance's speaking time (first word start to last word end) and its counts."""
    if not words:
        return None
    duration = max(0.2, words[-1].end - words[0].start)
    return _Span(words[-1].end, duration, len(words), sum(syllables(w.w) for w in words))


class PaceMeter:
    """Pace of one speaker over their last `window_s` seconds of speech (pauses between turns excluded)."""

    def __init__(self, window_s: float = 15.0, min_words: int = 4) -> None:
        self.window_s = window_s
        self.min_words = min_words
        self._finals: deque[_Span] = deque()
        self._partial: _Span | None = None

    def add(self, words: list[Word], final: bool) -> None:
        """A transcript update; a partial stands in for its utterance until the final comes."""
        span = span_of(words)
        if not final:
            self._partial = span
            return
        self._partial = None
        if span is not None:
            self._finals.append(span)
            while sum(s.duration for s in self._finals) - self._finals[0].duration > self.window_s:
                self._finals.popleft()

    def latest(self, min_words: int = 8) -> tuple[float | None, float | None]:
        """(wpm, syllables/s) of the utterance being spoken (or just finished), if it has `min_words`
        words: a few words' timings are too rough to call someone fast."""
        span = self._partial or (self._finals[-1] if self._finals else None)
        if span is None or span.words < max(min_words, self.min_words):
            return None, None
        return 60.0 * span.words / span.duration, span.syllables / span.duration

    def pace(self) -> tuple[float | None, float | None]:
        """(words per minute, syllables per second), or (None, None) with too few words."""
        spans = list(self._finals) + ([self._partial] if self._partial else [])
        total, words, syl = 0.0, 0, 0
        for s in reversed(spans):
            total, words, syl = total + s.duration, words + s.words, syl + s.syllables
            if total >= self.window_s:
                break
        if words < self.min_words or total <= 0:
            return None, None
        return round(60.0 * words / total, 1), round(syl / total, 2)
