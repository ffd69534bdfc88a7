"""One call wired up: a source through the pipeline and the coaching stage to the sinks.

Replay, live capture, the demo and QA ingest all build their call here, so they share every
stage after the source. The agent's own actions (dismiss a nudge, ask for a supervisor, mark a
moment) enter the event stream here too, stamped in call time.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable

from .analysis.hostility import HostilityScorer
from .audio.source import AudioBlock, FileSource, Pacer, SplitSource, roles_for
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


def warn(message: str) -> None:
    """A warning about the input, once, on stderr (the call goes on)."""
    print(f"callmon: warning: {message}", file=sys.stderr, flush=True)


def open_file(
    path: str | os.PathLike,
    cfg: Config,
    pacer: Pacer | None = None,
    *,
    transcriber: Transcriber | None = None,
    notify: Callable[[str], None] = warn,
) -> tuple[FileSource | SplitSource, dict[str, int]]:
    """A recording opened and checked, with its channels mapped to roles as configured.

    The one place a recording is opened for replay and QA ingest. A mono recording (or one whose
    channels carry the same signal) is one role, or, with `audio.diarize`, split into agent and
    customer; `transcriber` hears who greets (without one, the bundled model is loaded for it).
    Anything surprising about the file is said once through `notify`.
    """
    audio = cfg.audio
    source = FileSource(path, audio.block_ms * 16, pacer)
    name = source.path
    mono_is = "is mono"
    if source.same_channels:
        kind = "stereo" if source.channels == 2 else "multichannel"
        mono_is = f"is mono saved as {kind} (its {source.channels} channels carry the same signal), so it is taken as mono"
    mono = source.channels == 1 or source.same_channels
    if not mono:
        if audio.diarize == "on":
            notify(f"{name} is not mono: its roles come from its channels, so --diarize is not needed")
        roles = roles_for(source.channels, audio.agent_channel, audio.customer_channel, audio.mono_role)
        source.use_roles(roles)
        if source.channels > 2:
            notify(f"{name} has {source.channels} channels; using channel {roles['agent']} for the agent and "
                   f"{roles['customer']} for the customer (choose others with --agent-channel and --customer-channel)")
        return source, roles
    if audio.diarize != "off":
        split = _split(source, cfg, transcriber)
        if split is not None:
            if source.same_channels:
                notify(f"{name} {mono_is} and split into agent and customer")
            return split, split.roles
        notify(f"{name} {mono_is} and no speaker in it greets like an agent, so it is kept as one voice: the whole "
               f"recording is the {audio.mono_role} and the talk ratio is unknown (--diarize splits it anyway)")
    else:
        notify(f"{name} {mono_is}: the whole recording is the {audio.mono_role} and the talk ratio is unknown; "
               "if it holds both sides, --diarize splits it into agent and customer")
    roles = {audio.mono_role: 0}
    source.use_roles(roles)
    return source, roles


def _split(source: FileSource, cfg: Config, transcriber: Transcriber | None) -> SplitSource | None:
    """Diarize the mono recording (a first pass over the file) and wrap it as agent and customer; None
    when `diarize = "auto"` hears no agent's greeting."""
    from .stt.agent_speaker import choose_agent
    from .stt.diarize import HOP, FeatureStream

    first = FileSource(source.path, source.block_samples)
    first.use_roles({"mix": 0})
    features = FeatureStream(threads=cfg.stt.threads)  # a QA worker's share of the cores, as its model's
    for block in first:
        features.push(block.roles["mix"][: block.length])
    diar = features.result()
    if transcriber is None and (cfg.audio.agent_speaker == "auto" or cfg.audio.diarize == "auto"):
        transcriber = WhisperTranscriber(cfg.stt)
    if cfg.audio.diarize == "auto":
        # One voice cannot be told from two by the sound alone (docs/EVALUATION.md): a recording
        # is taken as a whole call when one of its speakers opens it the way an agent does.
        heard = choose_agent(diar, features.head, "auto", transcriber)
        if not heard.greeted:
            return None
        choice = heard if cfg.audio.agent_speaker == "auto" else choose_agent(diar, features.head, cfg.audio.agent_speaker, None)
    else:
        choice = choose_agent(diar, features.head, cfg.audio.agent_speaker, transcriber)
    agent_s, customer_s = diar.speech_s(choice.speaker), diar.speech_s(1 - choice.speaker)
    summary = {
        "method": "diarization", "agent": ("first", "second")[choice.speaker], "reason": choice.reason,
        "agent_speech_s": round(agent_s, 1), "customer_speech_s": round(customer_s, 1),
    }
    return SplitSource(source, diar.labels, HOP, choice.speaker, summary, noise_rms=diar.noise_rms)


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
