"""How hostile one customer utterance is: the trained text model and the intent lexicon together.

The model catches offensive language however it is phrased; the lexicon catches intents a
toxicity model does not see as offensive (a manager request, a legal threat, exasperation) and
names the category. They are combined as a noisy OR: either alone can raise the score.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..resources import project_file
from .lexicon import CUSTOMER_CATEGORIES, Lexicon, Match, default_lexicon

log = logging.getLogger(__name__)

OFFENSIVE_CATEGORIES = ("insult", "profanity", "violent_threat")


@dataclass(frozen=True)
class HostilityResult:
    """The verdict on one utterance."""

    text: str
    hostility: float
    offensive: bool
    categories: list[str]
    model: float | None = None
    matches: list[Match] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The `callmon hostility` JSON line."""
        return {
            "text": self.text, "hostility": round(self.hostility, 3), "offensive": self.offensive,
            "categories": self.categories, "model": None if self.model is None else round(self.model, 3),
            "phrases": [{"category": m.category, "phrase": m.phrase} for m in self.matches],
        }


class HostilityScorer:
    """Scores utterances with the lexicon and, when it is installed, the trained model."""

    def __init__(self, lexicon: Lexicon | None = None, model=None, threshold: float = 0.5) -> None:  # noqa: ANN001
        self.lexicon = lexicon or default_lexicon()
        self.model = model
        self.threshold = threshold

    @classmethod
    def load(cls, model_dir: str = "models/hostility", threshold: float = 0.5) -> HostilityScorer:
        """The lexicon plus the model in `model_dir` (relative to the project); lexicon only if ""."""
        model = None
        if model_dir:
            path = Path(model_dir).expanduser()
            if not path.is_absolute() and not path.exists():
                path = project_file(model_dir)
            from .hostility_model import HostilityModel

            model = HostilityModel.load(path)
        return cls(default_lexicon(), model, threshold)

    def score(self, text: str, matches: list[Match] | None = None) -> HostilityResult:
        """Hostility 0..1, whether it is offensive, and the intent categories found."""
        if matches is None:
            matches = self.lexicon.match(text, role="customer")
        weights = {c.name: c.weight for c in self.lexicon.categories.values()}
        lex = max((weights[m.category] for m in matches), default=0.0)
        p = self.model.score(text) if self.model is not None and text.strip() else None
        hostility = 1.0 - (1.0 - lex) * (1.0 - (p or 0.0))
        categories = [c for c in CUSTOMER_CATEGORIES if any(m.category == c for m in matches)]
        offensive = (p is not None and p >= self.threshold) or any(c in OFFENSIVE_CATEGORIES for c in categories)
        return HostilityResult(text, hostility, offensive, categories, p, matches)
