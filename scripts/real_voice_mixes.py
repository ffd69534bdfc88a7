"""Two-speaker mono "calls" of real voices, made from RAVDESS actors, for scoring the diarization.

The scenario calls' voices are espeak-ng's, and several of their same-sex pairs differ only in
accent rules and a pitch setting: a speaker model trained on real people hears them as one voice.
These mixes put two real actors on one line instead: the agent an actor's three calm clips
(RAVDESS neutral and calm), the customer another actor's four angry clips (two normal, two strong),
in turns A C A C A C C with pauses of 0.3-0.8 s; each side also on its own channel, the same call
as a stereo recorder would keep it, for comparing the cost of replaying the two. Both say the same two sentences ("Kids are
talking by the door", "Dogs are sitting by the door"), so nothing but the voice tells them apart,
and the customer's anger changes the voice as a real escalation does. Nothing in the diarization
was tuned on them.

RAVDESS is CC BY-NC-SA 4.0, evaluation only: the mixes are made in memory, never written into the
repository. Used by scripts/eval-diarize and tests/test_diarize.py.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

RATE = 16000
ACTORS = range(1, 13)
LEAD_S = 0.5
TRIM_DB = 40.0  # a clip's silence: 20 ms frames more than this below its loudest
NOISE = 1e-4  # a -80 dBFS floor, as the scenario calls have, so the pauses are not digital silence


@dataclass(frozen=True)
class Mix:
    """One mono mix (16 kHz float32), the same call in stereo (agent, customer), and who speaks when."""

    name: str
    audio: np.ndarray
    stereo: np.ndarray  # (2, samples): what a two-channel recorder would have kept
    turns: list[dict]  # {"role": "agent"|"customer", "start": s, "end": s}, as a scenario manifest's
    same_sex: bool


@dataclass(frozen=True)
class _Clip:
    audio: np.ndarray
    label3: str
    intensity: str
    sex: str


def mix(ravdess: Path, agent: int, customer: int) -> Mix:
    """Actor `agent`'s calm clips and actor `customer`'s angry ones, in turns on one line."""
    calm = [c.audio for c in _clips(ravdess, agent) if c.label3 == "neutral"]
    angry = [c.audio for c in sorted(_clips(ravdess, customer), key=lambda c: c.intensity != "normal")
             if c.label3 == "angry"]
    if len(calm) < 3 or len(angry) < 4:
        raise ValueError(f"actors {agent} and {customer} lack the clips a mix needs")
    order = [("agent", calm[0]), ("customer", angry[0]), ("agent", calm[1]), ("customer", angry[1]),
             ("agent", calm[2]), ("customer", angry[2]), ("customer", angry[3])]
    rng = np.random.default_rng(100 * agent + customer)
    pauses = [int(rng.uniform(0.3, 0.8) * RATE) for _ in order]
    length = int(LEAD_S * RATE) + sum(len(x) for _, x in order) + sum(pauses)
    tracks = {"agent": np.zeros(length, dtype=np.float32), "customer": np.zeros(length, dtype=np.float32)}
    turns, at = [], int(LEAD_S * RATE)
    for (role, x), pause in zip(order, pauses, strict=True):
        tracks[role][at : at + len(x)] = x
        turns.append({"role": role, "start": at / RATE, "end": (at + len(x)) / RATE})
        at += len(x) + pause
    noise = rng.normal(0.0, NOISE, (2, length)).astype(np.float32)
    stereo = np.stack([tracks["agent"], tracks["customer"]]) + noise
    sexes = {_clips(ravdess, a)[0].sex for a in (agent, customer)}
    return Mix(f"ravdess_{agent:02d}_{customer:02d}", stereo.sum(axis=0), stereo, turns, same_sex=len(sexes) == 1)


def all_pairs() -> list[tuple[int, int]]:
    """Every ordered pair of the 12 actors (132 mixes: 72 of a man and a woman, 60 of the same sex)."""
    return [(a, b) for a in ACTORS for b in ACTORS if a != b]


@cache
def _clips(ravdess: Path, actor: int) -> list[_Clip]:
    from faster_whisper.audio import decode_audio  # the decoder the monitor reads files with

    with open(ravdess / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["actor"]) == actor]
    return [
        _Clip(_trimmed(decode_audio(str(ravdess / r["file"]), sampling_rate=RATE)), r["label3"], r["intensity"], r["sex"])
        for r in rows
    ]


def _trimmed(x: np.ndarray, frame: int = 320) -> np.ndarray:
    """The clip without its leading and trailing silence (RAVDESS clips have about a second of each)."""
    frames = x[: len(x) // frame * frame].reshape(-1, frame)
    level = 10 * np.log10((frames**2).mean(axis=1) + 1e-12)
    loud = np.flatnonzero(level > level.max() - TRIM_DB)
    a, b = max(0, loud[0] - 5), min(len(frames), loud[-1] + 6)  # 100 ms kept either side
    return x[a * frame : b * frame].astype(np.float32)
