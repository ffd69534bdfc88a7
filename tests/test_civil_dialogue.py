"""Civil support dialogue (ASAPP ABCD sample) raises no hostility nudge.

The dialogues' turns become transcripts at a steady speaking pace and go through the real
analyzer, hostility model and coach, as replayed text would.
"""

import json

import pytest
from builders import final

from monitor.analysis.hostility import HostilityScorer
from monitor.coach.stage import CoachingStage
from monitor.config import load_config
from monitor.events import Nudge

HOSTILITY_KINDS = {"set_boundary", "call_supervisor", "acknowledge", "slow_down"}


@pytest.fixture(scope="module")
def scorer():
    return HostilityScorer.load(load_config().analysis.hostility_model)


def dialogues(data):
    return json.loads((data / "text/abcd_sample/abcd_sample.json").read_text())


def test_abcd_dialogues_raise_no_hostility_nudge(shared_data, scorer):
    for convo in dialogues(shared_data):
        stage = CoachingStage(load_config(), "c-abcd", scorer)
        t, raised = 0.5, []
        for role, text in convo["original"]:
            if role not in ("agent", "customer") or not text.strip():
                continue
            duration = max(0.6, 0.4 * len(text.split()))  # ~150 words per minute
            raised += [e for e in stage(final(role, text, t, t + duration)) if isinstance(e, Nudge)]
            t += duration + 0.8
        assert not [n for n in raised if n.kind in HOSTILITY_KINDS], [(n.kind, n.reason) for n in raised]
