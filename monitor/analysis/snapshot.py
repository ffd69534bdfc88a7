"""What the analyzer knows at one moment, frozen: the one input of every coaching rule.

A `Snapshot` is made after each event the analyzer takes in (a metrics block, a final, a pause
partial). Rules read it and nothing else of the analyzer, so they are pure functions and can be
tested by building snapshots by hand. A role the call does not have (a mono recording) is
`None`: a rule that needs it simply does not apply.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..events import Word
from .lexicon import Match


@dataclass(frozen=True)
class RoleView:
    """One speaker's measures. Levels and pace describe their latest speech."""

    speaking: bool = False
    lufs: float | None = None  # median level of their latest speech (absolute, LUFS)
    above_db: float | None = None  # that level against their own baseline
    agitation: float | None = None  # vocal effort against their own voice (from the audio meter)
    loud: bool = False  # raised: above their baseline, agitated, or above the phone line's sane range
    wpm: float | None = None  # pace of the utterance just spoken (None: too few words to judge)
    sps: float | None = None  # syllables per second of that utterance
    usual_wpm: float | None = None  # their own usual pace, once learnt
    fast: bool = False  # faster than their usual pace, or than the sane range, on their latest utterance
    racing: bool = False  # faster than the sane range whatever their usual pace (fast by any standard)
    racing_run: int = 0  # how many of their utterances in a row, up to the latest, were racing
    steady_s: float = 0.0  # seconds of speech since they were last loud or fast
    hostility: float = 0.0  # recent hostility of their words, fading (customer only)
    turn_s: float = 0.0  # their current turn (since the other side last finished an utterance): speech seconds
    turn_words: int = 0
    turn_facts: int = 0


@dataclass(frozen=True)
class UtteranceAnalysis:
    """What one final or pause partial says: confident intent phrases, hostility, how heated it is.

    `seq` numbers utterances in the order the call first heard them (a pause partial and its
    final share one), so rules can tell "the same utterance again" without comparing times.
    """

    seq: int
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
    heated: bool = False  # a heated complaint: exasperation, churn, swearing, hostile wording or a raised voice
    repeat: float = 0.0  # word overlap with an earlier utterance of the customer's (0..1)
    negativity: int = 0  # negative words and denials ("not", "nobody") minus positive words
    abuse: bool = False  # abuse aimed at the agent: an insult, or swearing or abusive words in a clause addressing them

    @property
    def categories(self) -> list[str]:
        """The intent categories found, in order, once each."""
        return list(dict.fromkeys(m.category for m in self.matches))

    def quote(self, category: str) -> str:
        """The words that matched `category`."""
        return next((m.phrase for m in self.matches if m.category == category), "")


@dataclass(frozen=True)
class Interruption:
    """The agent started while the customer was mid-sentence, and both kept going."""

    onset_t: float
    customer_run_s: float


@dataclass(frozen=True)
class Snapshot:
    """The call at call time `t`; `utterance` is set when the snapshot follows a transcript."""

    t: float
    heat: int
    agent: RoleView | None = None
    customer: RoleView | None = None
    overlap: bool = False
    interruption: Interruption | None = None
    utterance: UtteranceAnalysis | None = None

    def role(self, name: str) -> RoleView | None:
        """The named role's view, or None when the call does not have that side."""
        return self.agent if name == "agent" else self.customer if name == "customer" else None
