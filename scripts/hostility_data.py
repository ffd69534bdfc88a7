"""Evaluation-data helpers for the hostility model, shared by scripts/train-hostility and
scripts/eval-hostility (and the model's tests). Not part of the runtime package: the monitor
never reads OLID."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the held-out part: `fraction` of each class, chosen with a seeded RNG."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = np.zeros(len(labels), dtype=bool)
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        held[idx[: int(round(fraction * len(idx)))]] = True
    return held


def load_olid(path: Path) -> tuple[list[str], np.ndarray]:
    """Tweets and subtask-A labels (1 = OFF) from olid-training-v1.0.tsv."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["tweet"] for r in rows], np.array([r["subtask_a"] == "OFF" for r in rows], dtype=np.int64)


def olid_split(data_dir: Path) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """The fixed split of OLID training data: 80 % fit, 20 % held out (stratified, seed 13)."""
    texts, labels = load_olid(Path(data_dir) / "text" / "olid" / "olid-training-v1.0.tsv")
    held = stratified_split(labels, 0.2, seed=13)
    fit_t = [t for t, h in zip(texts, held, strict=True) if not h]
    held_t = [t for t, h in zip(texts, held, strict=True) if h]
    return fit_t, labels[~held], held_t, labels[held]


def score_many(model, texts: list[str]) -> list[float]:  # noqa: ANN001
    """`model.score` for each utterance, one at a time.

    Deliberately not batched: dynamic int8 quantisation scales activations per call, so padding
    a batch would shift scores slightly; one by one gives exactly what the monitor sees live.
    """
    return [model.score(t) for t in texts]
