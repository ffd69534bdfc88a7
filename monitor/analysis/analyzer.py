"""Rolling measures per role and the call's heat: pure, fed events in call-time order.

`on_metrics` fills in what the acoustic stage could not know (loudness against the speaker's
own baseline, pace, hostility, sentiment, heat, interruptions, talk ratio); `on_transcript`
analyses a final or a pause partial (intent phrases with confident words, hostility, whether it
is a heated complaint or repeats one). After either, `snapshot()` is the frozen view the coach's
rules read. Periodic partials are for display only and never reach the analyzer, so what it
decides depends only on what every replay mode hears at the same call time. No clocks, no I/O.

Loud and fast are judged twice: against the speaker's own baseline (voices, headsets and
accents differ) and against sane absolute ranges for a phone line (a customer angry from the
first word has an angry baseline; an agent racing from the start has a racing one).
"""

from __future__ import annotations

import re
import statistics
from collections import deque
from dataclasses import dataclass, field, replace

from ..config import AnalysisConfig
from ..events import Metrics, RoleMetrics, TranscriptFinal, TranscriptPartial
from .address import aimed_at_agent
from .hostility import HostilityScorer
from .lexicon import normalise
from .pace import PaceMeter
from .snapshot import Interruption, RoleView, Snapshot, UtteranceAnalysis

THREATS = ("legal_threat", "violent_threat")
HOSTILE_INTENTS = frozenset({*THREATS, "manager_request", "insult", "profanity", "churn_threat", "exasperation"})
HEATED_INTENTS = frozenset({"exasperation", "churn_threat", "profanity"})
CALM_MIN_WORDS = 3  # a calm customer utterance this long ends the hostility hold ("ok" alone does not)
_STOP = frozenset({"the", "a", "an", "i", "to", "and", "is", "it", "of", "my", "you", "that", "this", "s", "t", "m",
                   "on", "for", "in", "ve", "re", "ll", "d", "me", "was", "be", "been", "have", "has", "at", "with"})
_SUFFIX = re.compile(r"(?:ing|ed|es|e|s)$")
# Denials count towards a complaint's negativity: "nobody turned up", "it's not working".
_NEGATION = re.compile(r"\b(not|no|nobody|nothing|never|didn t|don t|doesn t|won t|can t|cannot|isn t|wasn t|haven t|hasn t)\b")
_FACT = re.compile(
    r"\b(\d+|january|february|march|april|may|june|july|august|september|october|november|december|monday|tuesday"
    r"|wednesday|thursday|friday|saturday|sunday|pounds?|dollars?|euros?|quid|bucks|percent|order|reference|account"
    r"|number|invoice|postcode|address)\b"
)


@dataclass
class _Turn:
    s: float = 0.0
    words: int = 0
    facts: int = 0

    def plus(self, other: _Turn) -> _Turn:
        return _Turn(round(self.s + other.s, 2), self.words + other.words, self.facts + other.facts)


@dataclass
class _Role:
    pace: PaceMeter
    learning: list[float] = field(default_factory=list)
    baseline: float | None = None
    recent: deque[float] = field(default_factory=deque)
    speech_s: float = 0.0
    talk_s: float = 0.0
    speaking: bool = False
    lufs: float | None = None
    above: float | None = None
    agitation: float | None = None
    sentiment: float | None = None
    pace_learning: list[float] = field(default_factory=list)
    pace_learnt_s: float = 0.0
    pace_base: float | None = None
    wpm: float | None = None
    sps: float | None = None
    fast: bool = False
    racing: bool = False
    racing_run: int = 0
    racing_finals: int = 0  # finished utterances in a row that were racing
    steady_s: float = 0.0
    turn: _Turn = field(default_factory=_Turn)  # finished utterances of the current turn
    pending: _Turn = field(default_factory=_Turn)  # the utterance a pause partial has heard so far
    open_utt: tuple[float, int] | None = None  # (start, seq) of the utterance not yet final


class Analyzer:
    """Keeps each role's rolling windows and the call's heat."""

    def __init__(self, cfg: AnalysisConfig, scorer: HostilityScorer, hop_s: float = 0.1) -> None:
        self.cfg = cfg
        self.scorer = scorer
        self.hop_s = hop_s
        self.roles: dict[str, _Role] = {}
        self.t = 0.0
        self.heat = 0
        self.peak_heat = 0
        self._below_since: float | None = None
        self._hostility_now = 0.0  # the customer's hostility at `t`, computed once per event
        self._hostile: deque[tuple[float, float]] = deque()  # (t, score) of customer utterances
        self._intents: deque[tuple[float, str]] = deque()  # (t, category) of customer utterances
        self._complaints: deque[tuple[int, frozenset[str], bool]] = deque(maxlen=20)  # customer utterances: words, heated
        self._seq = 0
        self._customer_run = 0.0
        self._onset: tuple[float, float] | None = None  # (agent onset t, customer run before it)
        self._was_agent = False
        self.overlap = False
        self.interruptions = 0
        self.interruption: Interruption | None = None  # confirmed on the latest metrics block

    def _role(self, role: str) -> _Role:
        if role not in self.roles:
            self.roles[role] = _Role(PaceMeter(self.cfg.pace_window_s, self.cfg.pace_min_words))
        return self.roles[role]

    # -- the view the coach reads ----------------------------------------------------------

    def snapshot(self, utterance: UtteranceAnalysis | None = None) -> Snapshot:
        """The analysis now, frozen; roles the call has not shown are None."""
        return Snapshot(
            self.t, self.heat, self._view("agent"), self._view("customer"), self.overlap, self.interruption, utterance,
        )

    def _view(self, name: str) -> RoleView | None:
        st = self.roles.get(name)
        if st is None:
            return None
        turn = st.turn.plus(st.pending) if st.pending.words else st.turn
        return RoleView(
            speaking=st.speaking, lufs=st.lufs, above_db=st.above, agitation=st.agitation, loud=self._loud(st),
            wpm=st.wpm, sps=st.sps, usual_wpm=st.pace_base, fast=st.fast, racing=st.racing,
            racing_run=st.racing_run, steady_s=st.steady_s,
            hostility=self._hostility_now if name == "customer" else 0.0,
            turn_s=turn.s, turn_words=turn.words, turn_facts=turn.facts,
        )

    def talk_ratio(self) -> float | None:
        """The agent's share of the time anyone spoke; None unless both sides are heard (a mono call)."""
        agent, customer = self.roles.get("agent"), self.roles.get("customer")
        if agent is None or customer is None or agent.talk_s + customer.talk_s == 0:
            return None
        return round(agent.talk_s / (agent.talk_s + customer.talk_s), 3)

    # -- transcripts -------------------------------------------------------------------------

    def on_transcript(self, event: TranscriptPartial) -> UtteranceAnalysis:
        """Analyse a final or a pause partial (never a periodic one: those are for display)."""
        final = isinstance(event, TranscriptFinal)
        st = self._role(event.role)
        seq = self._utterance_seq(st, event.start, final)
        st.pace.add(event.words, final)
        self._learn_pace(st, final, event.end - event.start)
        probs = [w.p for w in event.words for _ in normalise(w.w).split()]
        confidence = statistics.fmean(w.p for w in event.words) if event.words else 0.0
        matches = [
            m for m in self.scorer.lexicon.match(event.text, role=event.role)
            if _mean(probs[m.first_word : m.last_word + 1], confidence) >= self.cfg.min_word_p
        ]
        categories = {m.category for m in matches}
        hostility, model = 0.0, None
        if event.role == "customer":
            result = self.scorer.score(event.text, matches)
            hostility, model = result.hostility, result.model
        pos, neg = self.scorer.lexicon.valence(event.text)
        negativity = neg + len(_NEGATION.findall(normalise(event.text))) - pos
        facts = len(_FACT.findall(normalise(event.text)))
        this = _Turn(max(0.0, event.end - event.start), len(event.words), facts)
        if final:
            st.turn, st.pending, st.open_utt = st.turn.plus(this), _Turn(), None
            st.sentiment = round(max(-1.0, min(1.0, (pos - neg) / (pos + neg + 1) - hostility)), 2)
            for name, other in self.roles.items():
                if name != event.role:  # the other side's turn is over once this one has spoken
                    other.turn, other.pending = _Turn(), _Turn()
        else:
            st.pending = this
        heated, repeat, abuse = False, 0.0, False
        if event.role == "customer":
            swear = next((m.phrase for m in matches if m.category == "profanity"), "")
            model_says = self._model_says if (model or 0.0) >= self.cfg.abusive else None
            abuse = aimed_at_agent(event.text, "insult" in categories, swear, model_says)
            heated, repeat = self._complaint(seq, event.text, categories, hostility, negativity, st)
            self._track_hostility(event.t, final, hostility, categories, len(event.words))
            self._hostility_now = round(self.hostility(self.t), 3)
        return UtteranceAnalysis(
            seq, event.role, final, event.t, event.start, event.end, event.text, event.words, matches,
            round(hostility, 3), model, facts, round(confidence, 3), heated, round(repeat, 2),
            negativity, abuse,
        )

    def _model_says(self, clause: str) -> bool:
        """The text model finds this clause abusive (asked only when it found the whole utterance so)."""
        return self.scorer.model is not None and self.scorer.model.score(clause) >= self.cfg.abusive

    def _utterance_seq(self, st: _Role, start: float, final: bool) -> int:
        """A pause partial and the final of the same utterance share one number."""
        if st.open_utt is not None and st.open_utt[0] == start:
            return st.open_utt[1]
        self._seq += 1
        if not final:
            st.open_utt = (start, self._seq)
        return self._seq

    def _complaint(
        self, seq: int, text: str, categories: set[str], hostility: float, negativity: int, st: _Role,
    ) -> tuple[bool, float]:
        """Whether this customer utterance is a heated complaint, and how much it repeats an earlier
        utterance of theirs (content words, crudely stemmed: "charge" and "charged" are one word)."""
        words = frozenset(_SUFFIX.sub("", w) if len(w) > 4 else w for w in normalise(text).split()) - _STOP
        heated = bool(categories & HEATED_INTENTS) or hostility >= self.cfg.tense or self._loud(st)
        # A complaint again: the same words as an earlier heated one, or as any earlier one if this is heated or negative.
        upset = heated or negativity >= 1
        repeat = max((_overlap(words, c) for s, c, hot in self._complaints if s != seq and (hot or upset)), default=0.0)
        self._complaints.append((seq, words, heated))
        return heated, repeat

    def _track_hostility(self, t: float, final: bool, hostility: float, categories: set[str], n_words: int) -> None:
        if hostility < self.cfg.tense and not categories & HOSTILE_INTENTS and n_words >= CALM_MIN_WORDS:
            # The customer spoke calmly: earlier hostility no longer describes them.
            self._hostile.clear()
            self._intents.clear()
        if final:
            self._hostile.append((t, hostility))
            self._intents.extend((t, c) for c in sorted(categories & HOSTILE_INTENTS))

    # -- metrics -----------------------------------------------------------------------------

    def on_metrics(self, m: Metrics) -> Metrics:
        """The metrics event with every rolling measure filled in, and the heat updated."""
        self.t = m.t
        self._hostility_now = round(self.hostility(m.t), 3)
        roles = {}
        for name, rm in m.roles.items():
            st = self._role(name)
            st.speaking = rm.speaking
            if rm.agitation is not None:
                st.agitation = rm.agitation
            if rm.speaking:
                st.talk_s += self.hop_s
                if rm.loudness_lufs is not None and rm.loudness_lufs > -60.0:
                    self._learn_level(st, rm.loudness_lufs)
                st.steady_s = 0.0 if (self._loud(st) or st.fast) else round(st.steady_s + self.hop_s, 2)
            wpm, sps = st.pace.pace()
            roles[name] = replace(
                rm, loudness_above_baseline_db=st.above, pace_wpm=wpm, pace_sps=sps,
                hostility=self._hostility_now if name == "customer" else None, sentiment=st.sentiment,
            )
        self.overlap = m.overlap
        self._track_interruptions(m)
        self._update_heat(m.t)
        return replace(m, roles=roles, heat=self.heat, interruptions=self.interruptions, talk_ratio=self.talk_ratio())

    def _learn_pace(self, st: _Role, final: bool, duration: float) -> None:
        """Fast: faster than the speaker's own usual pace (learnt like the loudness baseline), or than the sane range."""
        cfg = self.cfg
        # Judge this utterance against the usual pace before it joins what is usual.
        wpm, sps = st.pace.latest()
        st.wpm, st.sps = _r(wpm, 0), _r(sps, 2)
        usual = st.pace_base
        relative = st.wpm is not None and usual is not None and st.wpm >= max(cfg.fast_min_wpm, cfg.fast_ratio * usual)
        st.racing = st.wpm is not None and (st.wpm >= cfg.fast_wpm or (st.sps or 0.0) >= cfg.fast_sps)
        st.fast = relative or st.racing
        if st.wpm is not None:  # an utterance too short to time leaves the run as it was
            st.racing_run = st.racing_finals + 1 if st.racing else 0
            if final:
                st.racing_finals = st.racing_run
        if st.fast:
            st.steady_s = 0.0
        elif final and st.wpm is not None and not self._loud(st):
            st.steady_s = max(st.steady_s, duration)  # a whole calm utterance, now that its pace is known
        rough, _ = st.pace.latest(min_words=cfg.pace_min_words)
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
            # Raised speech never joins what is usual, not even while it is being learnt: on a short
            # call the customer's shouting would otherwise become their baseline within seconds.
            if st.baseline is None or lufs - st.baseline < 3.0:
                st.learning.append(lufs)
            if st.speech_s >= cfg.baseline_min_speech_s:
                st.baseline = statistics.median(st.learning)
        elif st.baseline is not None and lufs - st.baseline < 3.0:
            # Follow calm speech slowly; raised speech never drags the baseline up.
            st.baseline += cfg.baseline_follow * self.hop_s * (lufs - st.baseline)
        st.lufs = round(statistics.median(st.recent), 1)
        if st.baseline is not None:
            st.above = round(st.lufs - st.baseline, 1)

    def _loud(self, st: _Role) -> bool:
        """Raised: against their own baseline or voice, or louder than speech on a phone line should be."""
        cfg = self.cfg
        return (
            (st.above is not None and st.above >= cfg.loud_db)
            or (st.agitation is not None and st.agitation >= cfg.agitated)
            or (st.lufs is not None and st.speech_s >= cfg.baseline_min_speech_s and st.lufs >= cfg.loud_lufs)
        )

    def hostility(self, t: float) -> float:
        """The customer's hostility now: recent utterances' scores, fading over `hostility_hold_s`."""
        hold = self.cfg.hostility_hold_s
        while self._hostile and t - self._hostile[0][0] > hold:
            self._hostile.popleft()
        return max((s * (1.0 - (t - ts) / hold) for ts, s in self._hostile), default=0.0)

    def _recent_intents(self, t: float) -> set[str]:
        while self._intents and t - self._intents[0][0] > self.cfg.hostility_hold_s:
            self._intents.popleft()
        return {c for _, c in self._intents}

    def _update_heat(self, t: float) -> None:
        cfg = self.cfg
        points = 0
        customer = self.roles.get("customer")
        if customer is not None:
            points += int(self._loud(customer)) + int(customer.fast)
            h = self._hostility_now
            points += 2 if h >= cfg.abusive else 1 if h >= cfg.tense else 0
        intents = self._recent_intents(t)
        if intents & set(THREATS):
            points = 3
        elif "manager_request" in intents:
            points = max(points, 2)
        target = min(3, points)
        if target >= self.heat:
            self.heat, self._below_since = target, None
        elif self._below_since is None:
            self._below_since = t
        elif t - self._below_since >= cfg.heat_fall_s:
            # Heat rises at once and falls once the customer has stayed calmer for a moment.
            self.heat, self._below_since = target, None
        self.peak_heat = max(self.peak_heat, self.heat)

    def _track_interruptions(self, m: Metrics) -> None:
        agent: RoleMetrics | None = m.roles.get("agent")
        customer: RoleMetrics | None = m.roles.get("customer")
        self.interruption = None
        if agent is None or customer is None:
            return
        if agent.speaking and not self._was_agent and customer.speaking and self._customer_run >= self.cfg.interrupt_after_s:
            self._onset = (m.t - self.hop_s, self._customer_run)
        if self._onset is not None:
            if not (agent.speaking and customer.speaking):
                self._onset = None
            elif m.t - self._onset[0] >= self.cfg.overlap_min_s:
                self.interruptions += 1
                self.interruption = Interruption(round(self._onset[0], 2), round(self._onset[1], 1))
                self._onset = None
        self._customer_run = self._customer_run + self.hop_s if customer.speaking else 0.0
        self._was_agent = agent.speaking


def _mean(values: list[float], default: float) -> float:
    return statistics.fmean(values) if values else default


def _r(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Share of the smaller utterance's content words that the other repeats."""
    if len(a) < 3 or len(b) < 3:
        return 0.0
    return len(a & b) / min(len(a), len(b))
