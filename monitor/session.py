"""One call wired up: a source through the pipeline and the coaching stage to the sinks.

Replay, live capture, the demo and QA ingest all build their call here, so they share every
stage after the source. The agent's own actions (dismiss a nudge, ask for a supervisor, mark a
moment) enter the event stream here too, stamped in call time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

from .analysis.hostility import HostilityScorer
from .audio.source import AudioBlock, FileSource, Pacer, roles_for
from .coach.stage import CoachingStage
from .config import Config, ConfigError
from .events import Bookmark, StreamEnded, SupervisorRequested
from .pipeline import Pipeline, Sink, new_call_id
from .stt.model import WhisperTranscriber
from .stt.worker import Transcriber

log = logging.getLogger(__name__)


def load_scorer(cfg: Config) -> HostilityScorer:
    """The configured hostility scorer; a model that cannot be loaded is a config error."""
    try:
        return HostilityScorer.load(cfg.analysis.hostility_model)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"analysis.hostility_model {cfg.analysis.hostility_model!r} cannot be loaded ({exc}); "
            'set it to the shipped "models/hostility" or "" for the lexicon alone'
        ) from None


def open_file(path: str | os.PathLike, cfg: Config, pacer: Pacer | None = None) -> tuple[FileSource, dict[str, int]]:
    """A recording opened and checked, with its channels mapped to roles as configured."""
    source = FileSource(path, cfg.audio.block_ms * 16, pacer)
    roles = roles_for(source.channels, cfg.audio.agent_channel, cfg.audio.customer_channel, cfg.audio.mono_role)
    source.use_roles(roles)
    return source, roles


class CallSession:
    """A call from source to sinks, with the agent's controls."""

    def __init__(
        self,
        cfg: Config,
        source: Iterable[AudioBlock],
        roles: dict[str, int],
        sinks: list[Sink],
        *,
        partials: bool,
        source_name: str = "",
        call_id: str | None = None,
        transcriber: Transcriber | None = None,
        scorer: HostilityScorer | None = None,
    ) -> None:
        self.call_id = call_id or new_call_id()
        self.sinks = sinks
        self.coaching = CoachingStage(cfg, self.call_id, scorer or load_scorer(cfg))
        self.pipeline = Pipeline(
            cfg, source, roles, transcriber or WhisperTranscriber(cfg.stt), sinks,
            partials=partials, source_name=source_name, call_id=self.call_id, stages=[self.coaching],
        )

    def run(self) -> StreamEnded:
        """Run the call to its end (returns its duration and error); sinks with `close()` are closed, even on failure."""
        try:
            return self.pipeline.run()
        finally:
            for sink in self.sinks:
                close = getattr(sink, "close", None)
                if close is not None:
                    try:
                        close()
                    except Exception:  # one broken sink must not hide the call's own outcome
                        log.exception("closing %r failed", sink)

    def stop(self) -> None:
        """End the call after the current block (safe from any thread)."""
        self.pipeline.stop()

    def dismiss(self, nudge_id: str) -> None:
        """The agent dismissed a nudge."""
        self.pipeline.inject(lambda t, wall: self.coaching.dismiss(nudge_id, t, wall))

    def request_supervisor(self, note: str = "") -> None:
        """The agent asked for a supervisor."""
        self.pipeline.inject(lambda t, wall: [SupervisorRequested(self.call_id, t, wall, note)])

    def bookmark(self, note: str = "") -> None:
        """The agent marked this moment for QA."""
        self.pipeline.inject(lambda t, wall: [Bookmark(self.call_id, t, wall, note)])
