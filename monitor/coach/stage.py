"""The coaching stage: analyzer then coach, as one step in the pipeline's event chain.

The pipeline hands every event here, from its own thread and the STT thread but one at a
time (it holds its emit lock), so the analyzer and coach need no locking of their own.

Only finals, pause partials and metrics reach the analyzer and coach: a periodic partial is
for display (its timing depends on how fast the model keeps up), so it passes through
untouched and can neither raise nor clear a nudge. This stage owns the call summary: the
pipeline's `StreamEnded` becomes `call.ended`, built once from what each owner knows.
"""

from __future__ import annotations

from ..analysis.analyzer import Analyzer
from ..analysis.hostility import HostilityScorer
from ..config import Config
from ..events import CallEnded, Event, Metrics, StreamEnded, SupervisorRequested, TranscriptFinal, TranscriptPartial
from .engine import Coach


class CoachingStage:
    """Enriches metrics, passes transcripts through, and adds nudges after the event that caused them."""

    def __init__(self, cfg: Config, call_id: str, scorer: HostilityScorer) -> None:
        self.analyzer = Analyzer(cfg.analysis, scorer, hop_s=cfg.audio.block_ms / 1000)
        self.coach = Coach(cfg.coach, call_id)

    def __call__(self, event: Event) -> list[Event]:
        """The events that leave this stage for one that enters it."""
        if isinstance(event, Metrics):
            enriched = self.analyzer.on_metrics(event)
            return [enriched, *self.coach.on_snapshot(self.analyzer.snapshot(), event.wall)]
        if isinstance(event, TranscriptPartial):
            if not (isinstance(event, TranscriptFinal) or event.pause):
                return [event]
            u = self.analyzer.on_transcript(event)
            return [event, *self.coach.on_snapshot(self.analyzer.snapshot(u), event.wall)]
        if isinstance(event, SupervisorRequested):
            return [event, *self.coach.supervisor_requested(event.t, event.wall)]
        if isinstance(event, StreamEnded):
            cleared = self.coach.close(event.t, event.wall)
            return [*cleared, CallEnded(
                event.call_id, event.t, event.wall, duration=event.duration, peak_heat=self.analyzer.peak_heat,
                nudges_raised=self.coach.raised, nudges_followed=self.coach.followed,
                talk_ratio=self.analyzer.talk_ratio(), error=event.error,
            )]
        return [event]

    def dismiss(self, nudge_id: str, t: float, wall: float) -> list[Event]:
        """The agent dismissed a nudge (from the TUI)."""
        return self.coach.dismiss(nudge_id, t, wall)
