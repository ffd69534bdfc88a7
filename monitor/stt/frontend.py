"""One role's audio front end: every per-block measure of one voice, each measured once.

Per 100 ms block of one role's audio, `RoleFrontEnd` runs the role's one loudness meter
(K-weighted: the only K-weighting of that voice), the streaming VAD, the utterance policy
(`Segmenter`) and the agitation meter, which takes the meter's loudness and the segmenter's
speech verdict instead of measuring them again. The pipeline keeps one per role and only
passes the reading on. Pure and synchronous: the same audio gives the same readings at any
replay speed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio.agitation import AgitationMeter
from ..audio.levels import LoudnessMeter
from ..config import Config
from .segmenter import Segmenter, Utterance
from .vad import StreamingVad


@dataclass(frozen=True)
class RoleReading:
    """What one block of a role's audio measured."""

    lufs: float  # momentary loudness of the latest window (LUFS, not rounded)
    speaking: bool  # the segmenter is inside an utterance
    agitation: float | None  # against the speaker's own voice; None until their baseline is learnt
    utterances: tuple[Utterance, ...]  # partials and finals the block completed, in order


class RoleFrontEnd:
    """Loudness, VAD, segmenting and agitation of one role, fed block by block."""

    def __init__(self, role: str, cfg: Config, rate: int) -> None:
        self.role = role
        self._meter = LoudnessMeter(rate, cfg.features.loudness_window_s, cfg.features.loudness_floor_lufs)
        self._vad = StreamingVad()
        self._segmenter = Segmenter(role, cfg.vad, rate)
        self._agitation = AgitationMeter(cfg.analysis.agitation_baseline_s, rate=rate)

    def push(self, samples: np.ndarray) -> RoleReading:
        """Feed one block of the role's audio (float32 mono at `rate`); what it measured."""
        lufs = self._meter.push(samples)
        utterances = tuple(self._segmenter.push(samples, self._vad.push(samples)))
        speaking = self._segmenter.speaking
        return RoleReading(lufs, speaking, self._agitation.push(samples, lufs, speaking), utterances)

    def look_ahead(self, samples: np.ndarray) -> None:
        """Audio the next pushes will bring (a file read ahead): its VAD runs now, in one model call."""
        self._vad.prime(samples)

    def flush(self) -> list[Utterance]:
        """The audio ended: the final of the utterance in progress, if any."""
        return self._segmenter.flush()
