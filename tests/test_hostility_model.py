"""The shipped hostility model: hostile utterances score above civil ones; held-out OLID macro-F1 holds."""

import sys
from pathlib import Path

import numpy as np
import pytest

from monitor.analysis.hostility_model import HostilityModel, normalise

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from hostility_data import olid_split, score_many  # noqa: E402  (evaluation helpers live with the scripts)

# documented in models/hostility/README.md; the test fails if a retrained model falls below it
DOCUMENTED_HELDOUT_MACRO_F1 = 0.771

HOSTILE = [
    "you are a useless idiot",
    "this is the worst f***ing service",
    "are you stupid or what, just shut up and put me through to someone who knows something",
    "you people are a bunch of lying crooks",
]
CIVIL = [
    "could you check my bill please",
    "thanks, that was helpful",
    "hi I'm calling about my order it hasn't arrived yet",
    "okay sure my account number is four five six",
]


@pytest.fixture(scope="module")
def model():
    return HostilityModel.load()


def test_hostile_scores_above_civil(model):
    hostile = score_many(model, HOSTILE)
    civil = score_many(model, CIVIL)
    assert min(hostile) > max(civil), (hostile, civil)
    for text in HOSTILE[:2]:
        assert model.score(text) >= model.threshold, text
    for text in CIVIL[:2]:
        assert model.score(text) < model.threshold, text


def test_scores_are_probabilities(model):
    scores = score_many(model, [*HOSTILE, *CIVIL, "", "   ", "😀", "a" * 2000])
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)
    assert model.score(HOSTILE[0]) == pytest.approx(scores[0])


def test_normalise_matches_spoken_transcripts():
    assert normalise("@USER Go home you’re drunk!!! #MAGA 👊 URL") == "go home you're drunk ! ! ! maga"
    assert normalise("This is the worst F***ing service") == "this is the worst fucking service"


def test_heldout_olid_macro_f1(model, shared_data):
    _, _, held_t, held_y = olid_split(shared_data)
    pred = np.array(score_many(model, held_t)) >= model.threshold
    f1s = []
    for c in (False, True):
        tp = np.sum((pred == c) & (held_y == c))
        p, r = tp / max(np.sum(pred == c), 1), tp / max(np.sum(held_y == c), 1)
        f1s.append(2 * p * r / (p + r))
    assert np.mean(f1s) >= DOCUMENTED_HELDOUT_MACRO_F1 - 0.005
