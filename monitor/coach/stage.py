"""The coaching stage: analyzer then coach, as one step in the pipeline's event chain.

The pipeline hands every event here, from its own thread and the STT thread but one at a
time (it holds its emit lock), so the analyzer and coach need no locking of their own.
"""

from __future__ import annotations

from dataclasses import replace

from ..analysis.analyzer import Analyzer
from ..analysis.hostility import HostilityScorer
from ..config import Config
from ..events import CallEnded, Event, Metrics, TranscriptFinal, TranscriptPartial
from .engine import Coach


class CoachingStage:
    """Enriches metrics, passes transcripts through, and adds nudges after the event that caused them."""

    def __init__(self, cfg: Config, call_id: str, scorer: HostilityScorer) -> None:
        self.analyzer = Analyzer(cfg.analysis, scorer, hop_s=cfg.audio.block_ms / 1000)
        self.coach = Coach(cfg.coach, cfg.analysis, call_id)

    def __call__(self, event: Event) -> list[Event]:
        """The events that leave this stage for one that enters it."""
        if isinstance(event, Metrics):
            enriched = self.analyzer.on_metrics(event)
            return [enriched, *self.coach.on_metrics(enriched, self.analyzer, event.wall)]
        if isinstance(event, TranscriptPartial) and not (isinstance(event, TranscriptFinal) or event.pause):
            return [event]  # a display partial: fast replays have none, so nothing may be decided on it
        if isinstance(event, TranscriptPartial):
            return [event, *self.coach.on_utterance(self.analyzer.on_transcript(event), self.analyzer, event.wall)]
        if isinstance(event, CallEnded):
            cleared = self.coach.close(event.t, event.wall)
            return [*cleared, replace(
                event, peak_heat=self.analyzer.peak_heat, nudges_raised=self.coach.raised,
                nudges_followed=self.coach.followed,
            )]
        return [event]

    def dismiss(self, nudge_id: str, t: float, wall: float) -> list[Event]:
        """The agent dismissed a nudge (from the TUI)."""
        return self.coach.dismiss(nudge_id, t, wall)
