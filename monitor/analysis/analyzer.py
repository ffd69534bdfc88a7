"""Rolling measures per role and the call's heat: pure, fed events in call-time order.

`on_metrics` fills in what the acoustic stage could not know (loudness against the speaker's
own baseline, pace, hostility, sentiment, heat, interruptions); `on_transcript` analyses one
utterance (intent phrases with confident words, hostility) for the coach. No clocks, no I/O:
replaying the same events gives the same numbers.
"""

from __future__ import annotations

import re
import statistics
from collections import deque
from dataclasses import dataclass, field, replace

from ..config import AnalysisConfig
from ..events import Metrics, RoleMetrics, TranscriptFinal, TranscriptPartial, Word
from .hostility import HostilityScorer
from .lexicon import Match, normalise
from .pace import PaceMeter

THREATS = ("legal_threat", "violent_threat")
_FACT = re.compile(
    r"\b(\d+|january|february|march|april|may|june|july|august|september|october|november|december|monday|tuesday"
    r"|wednesday|thursday|friday|saturday|sunday|pounds?|dollars?|euros?|quid|bucks|percent|order|reference|account"
    r"|number|invoice|postcode|address)\b"
)


@dataclass(frozen=True)
class UtteranceAnalysis:
    """What one transcript update says, for the coach: confident intent phrases and hostility."""

    role: str
    final: bool
    t: float
    start: float
    end: float
    text: str
    words: list[Word]
    matches: list[Match]
    hostility: float
    model: float | None
    facts: int
    confidence: float
    pause: bool = False  # a partial at a pause in the speaker's turn

    @property
    def categories(self) -> list[str]:
        """The intent categories found, in order, once each."""
        return list(dict.fromkeys(m.category for m in self.matches))

    def quote(self, category: str) -> str:
        """The words that matched `category`."""
        return next((m.phrase for m in self.matches if m.category == category), "")


@dataclass
class _Role:
    pace: PaceMeter
    learning: list[float] = field(default_factory=list)
    baseline: float | None = None
    recent: deque[float] = field(default_factory=deque)
    speech_s: float = 0.0
    sentiment: float | None = None
    above: float | None = None
    pace_learning: list[float] = field(default_factory=list)
    pace_learnt_s: float = 0.0
    pace_base: float | None = None
    fast: bool = False
    latest_wpm: float | None = None


class Analyzer:
    """Keeps each role's rolling windows and the call's heat."""

    def __init__(self, cfg: AnalysisConfig, scorer: HostilityScorer, hop_s: float = 0.1) -> None:
        self.cfg = cfg
        self.scorer = scorer
        self.hop_s = hop_s
        self.roles: dict[str, _Role] = {}
        self.heat = 0
        self.peak_heat = 0
        self._heat_since = 0.0
        self._hostile: deque[tuple[float, float]] = deque()  # (t, score) of customer utterances
        self._intents: deque[tuple[float, str]] = deque()  # (t, category) of customer utterances
        self._talk = {"agent": 0.0, "customer": 0.0}
        self._customer_run = 0.0
        self._onset: tuple[float, float] | None = None  # (agent onset t, customer run before it)
        self._was_speaking: dict[str, bool] = {}
        self.interruptions = 0
        self.interruption: tuple[float, float] | None = None  # confirmed (onset t, customer run), for the coach

    def _role(self, role: str) -> _Role:
        if role not in self.roles:
            self.roles[role] = _Role(PaceMeter(self.cfg.pace_window_s, self.cfg.pace_min_words))
        return self.roles[role]

    # -- transcripts -------------------------------------------------------------------------

    def on_transcript(self, event: TranscriptPartial) -> UtteranceAnalysis:
        """Analyse a partial or final; finals also feed pace, sentiment and the hostility window."""
        final = isinstance(event, TranscriptFinal)
        st = self._role(event.role)
        st.pace.add(event.words, final)
        self._learn_pace(st, final, event.end - event.start)
        probs = [w.p for w in event.words for _ in normalise(w.w).split()]
        confidence = statistics.fmean(w.p for w in event.words) if event.words else 0.0
        # A pause partial holds the whole utterance so far, decoded as its final will be: trust it alike.
        need = self.cfg.min_word_p if final or event.pause else self.cfg.partial_min_word_p
        matches = [
            m for m in self.scorer.lexicon.match(event.text, role=event.role)
            if _mean(probs[m.first_word : m.last_word + 1], confidence) >= need
        ]
        hostility, model = 0.0, None
        if event.role == "customer":
            result = self.scorer.score(event.text, matches)
            hostility, model = result.hostility, result.model
        if final:
            pos, neg = self.scorer.lexicon.valence(event.text)
            st.sentiment = round(max(-1.0, min(1.0, (pos - neg) / (pos + neg + 1) - hostility)), 2)
            if event.role == "customer":
                self._hostile.append((event.t, hostility))
                self._intents.extend((event.t, c) for c in dict.fromkeys(m.category for m in matches))
        facts = len(_FACT.findall(normalise(event.text)))
        return UtteranceAnalysis(
            event.role, final, event.t, event.start, event.end, event.text, event.words, matches,
            round(hostility, 3), model, facts, round(confidence, 3), event.pause,
        )

    # -- metrics -----------------------------------------------------------------------------

    def on_metrics(self, m: Metrics) -> Metrics:
        """The metrics event with every rolling measure filled in, and the heat updated."""
        roles = {}
        for name, rm in m.roles.items():
            st = self._role(name)
            if rm.speaking and rm.loudness_lufs is not None and rm.loudness_lufs > -60.0:
                self._learn_level(st, rm.loudness_lufs)
            if rm.speaking:
                self._talk[name] = self._talk.get(name, 0.0) + self.hop_s
            wpm, sps = st.pace.pace()
            roles[name] = replace(
                rm, loudness_above_baseline_db=st.above, pace_wpm=wpm, pace_sps=sps,
                hostility=round(self.hostility(m.t), 3) if name == "customer" else None, sentiment=st.sentiment,
            )
        self._track_interruptions(m)
        self._update_heat(m.t, roles.get("customer"))
        total = sum(self._talk.values())
        return replace(
            m, roles=roles, heat=self.heat, interruptions=self.interruptions,
            talk_ratio=round(self._talk["agent"] / total, 3) if total else None,
        )

    def _learn_pace(self, st: _Role, final: bool, duration: float) -> None:
        """Fast means faster than the speaker's own usual pace (learnt like the loudness baseline)."""
        cfg = self.cfg
        # Judge this utterance against the usual pace before it joins what is usual.
        wpm = st.latest_wpm = st.pace.latest_wpm()
        st.fast = wpm is not None and st.pace_base is not None and wpm >= max(cfg.fast_min_wpm, cfg.fast_ratio * st.pace_base)
        rough = st.pace.latest_wpm(min_words=cfg.pace_min_words)
        if final and rough is not None and st.pace_learnt_s < cfg.baseline_speech_s:
            st.pace_learning.append(rough)
            st.pace_learnt_s += duration
            if st.pace_learnt_s >= cfg.baseline_min_speech_s:
                st.pace_base = statistics.median(st.pace_learning)

    def _learn_level(self, st: _Role, lufs: float) -> None:
        cfg = self.cfg
        st.speech_s += self.hop_s
        st.recent.append(lufs)
        while len(st.recent) * self.hop_s > cfg.level_window_s:
            st.recent.popleft()
        if st.speech_s <= cfg.baseline_speech_s:
            st.learning.append(lufs)
            if st.speech_s >= cfg.baseline_min_speech_s:
                st.baseline = statistics.median(st.learning)
        elif st.baseline is not None and lufs - st.baseline < 3.0:
            # Follow calm speech slowly; raised speech never drags the baseline up.
            st.baseline += cfg.baseline_follow * self.hop_s * (lufs - st.baseline)
        if st.baseline is not None:
            st.above = round(statistics.median(st.recent) - st.baseline, 1)

    def hostility(self, t: float) -> float:
        """The customer's hostility now: recent utterances' scores, fading over `hostility_hold_s`."""
        hold = self.cfg.hostility_hold_s
        while self._hostile and t - self._hostile[0][0] > hold:
            self._hostile.popleft()
        return max((s * (1.0 - (t - ts) / hold) for ts, s in self._hostile), default=0.0)

    def recent_intents(self, t: float) -> set[str]:
        """Customer intent categories heard within the hostility hold."""
        while self._intents and t - self._intents[0][0] > self.cfg.hostility_hold_s:
            self._intents.popleft()
        return {c for _, c in self._intents}

    def raised(self, rm: RoleMetrics) -> bool:
        """Loud against their own baseline, or agitated against their own voice."""
        cfg = self.cfg
        loud = rm.loudness_above_baseline_db is not None and rm.loudness_above_baseline_db >= cfg.loud_db
        return loud or (rm.agitation is not None and rm.agitation >= cfg.agitated)

    def _update_heat(self, t: float, customer: RoleMetrics | None) -> None:
        cfg = self.cfg
        points = 0
        if customer is not None:
            if self.raised(customer):
                points += 1
            if self._role("customer").fast:
                points += 1
            h = customer.hostility or 0.0
            points += 2 if h >= cfg.abusive else 1 if h >= cfg.tense else 0
        intents = self.recent_intents(t)
        if intents & set(THREATS):
            points = 3
        elif "manager_request" in intents:
            points = max(points, 2)
        target = min(3, points)
        if target > self.heat:
            self.heat, self._heat_since = target, t
        elif target < self.heat and t - self._heat_since >= cfg.heat_fall_s:
            self.heat, self._heat_since = self.heat - 1, t
        self.peak_heat = max(self.peak_heat, self.heat)

    def _track_interruptions(self, m: Metrics) -> None:
        agent = m.roles.get("agent")
        customer = m.roles.get("customer")
        self.interruption = None
        if agent is None or customer is None:
            return
        was_agent = self._was_speaking.get("agent", False)
        if agent.speaking and not was_agent and customer.speaking and self._customer_run >= self.cfg.interrupt_after_s:
            self._onset = (m.t - self.hop_s, self._customer_run)
        if self._onset is not None:
            if not (agent.speaking and customer.speaking):
                self._onset = None
            elif m.t - self._onset[0] >= self.cfg.overlap_min_s:
                self.interruptions += 1
                self.interruption = self._onset
                self._onset = None
        self._customer_run = self._customer_run + self.hop_s if customer.speaking else 0.0
        self._was_speaking = {"agent": agent.speaking, "customer": customer.speaking}


def _mean(values: list[float], default: float) -> float:
    return statistics.fmean(values) if values else default
