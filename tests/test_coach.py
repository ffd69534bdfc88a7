"""The coach on scripted events: the right nudge, with its evidence, and how it clears.

These run the real analyzer and coach with the lexicon-only scorer (no model) so each rule
is checked in isolation; tests/test_scenarios.py checks them end to end on generated calls.
"""

from dataclasses import replace

from builders import final, later_final, metrics, pause_partial

from monitor.analysis.hostility import HostilityScorer
from monitor.coach.stage import CoachingStage
from monitor.config import load_config
from monitor.events import Metrics, Nudge, NudgeCleared


def stage(**overrides):
    cfg = load_config(overrides={"analysis.hostility_model": "", **overrides})
    return CoachingStage(cfg, "c-test", HostilityScorer.load(""))


def run(st, events):
    return [out for e in events for out in st(e)]


def nudges(out, kind=None):
    return [e for e in out if isinstance(e, Nudge) and (kind is None or e.kind == kind)]


def test_insult_asks_for_a_boundary_and_repeated_abuse_for_the_supervisor():
    st = stage()
    out = run(st, [final("customer", "you are a useless idiot", 10.0)])
    (n,) = nudges(out)
    assert n.kind == "set_boundary" and n.severity == "warn"
    assert "useless" in n.evidence["quote"] and n.evidence["trigger_t"] == n.t
    assert "abus" in n.reason
    # Abuse again before the agent has answered: the boundary was not set yet, so nothing more.
    assert nudges(run(st, [final("customer", "you absolute clown", 12.0)])) == []
    run(st, [final("agent", "I'm trying to help you here", 14.0)])  # the agent had their say
    out = run(st, [final("customer", "you're a total clown and you know it", 16.0)])
    assert [x.kind for x in nudges(out)] == ["call_supervisor"]
    assert nudges(out)[0].evidence["category"] == "abuse_after_boundary"


def test_violent_threat_is_critical():
    out = run(stage(), [final("customer", "if I come down there you will regret it", 5.0)])
    (n,) = nudges(out, "call_supervisor")
    assert n.severity == "critical" and "violence" in n.reason


def test_acknowledge_raised_then_resolved_when_the_agent_acknowledges():
    st = stage()
    out = run(st, [final("customer", "this is the third time I have called about this and nothing works", 8.0)])
    (n,) = nudges(out, "acknowledge")
    out = run(st, [final("agent", "I understand, that sounds really frustrating", 12.0, 14.0)])
    (cleared,) = [e for e in out if isinstance(e, NudgeCleared)]
    assert (cleared.id, cleared.how, cleared.followed) == (n.id, "resolved", True)
    assert cleared.follow_s > 0


def test_acknowledge_comes_at_the_pause_and_the_final_does_not_raise_it_again():
    st = stage(**{"coach.acknowledge.cooldown_s": 0.0})
    early = pause_partial("customer", "this is the third time I have called about this and nothing works", 8.0)
    (n,) = nudges(run(st, [early]), "acknowledge")
    assert n.t == early.t  # at the pause, before the final is decoded
    run(st, [final("agent", "I understand, that sounds really frustrating", 12.0, 14.0)])  # resolved
    # The final of that same utterance is not a "repeated complaint".
    assert nudges(run(st, [later_final(early)]), "acknowledge") == []


def test_a_pause_mid_turn_then_more_words_is_still_judged_on_the_final():
    early = pause_partial("customer", "hello I am calling about my bill", 3.0)
    st = stage()
    assert nudges(run(st, [early]), "acknowledge") == []
    whole = later_final(early, "hello I am calling about my bill and this is ridiculous I have had enough of it")
    assert len(nudges(run(st, [whole]), "acknowledge")) == 1


def test_a_repeated_complaint_turns_the_empathy_up():
    st = stage(**{"coach.acknowledge.cooldown_s": 0.0})
    run(st, [final("customer", "my broadband keeps dropping every evening and it is ridiculous", 5.0)])
    run(st, [final("agent", "right, let me look into the line", 9.0)])
    run(st, [final("agent", "I understand how annoying that is", 10.0)])  # resolves the first
    out = run(st, [final("customer", "like I said my broadband keeps dropping every single evening", 15.0)])
    (n,) = nudges(out, "acknowledge")
    assert n.evidence["repeat_similarity"] >= 0.45 and "repeating" in n.reason


def test_unsure_words_raise_nothing():
    out = run(stage(), [final("customer", "get me your boss right now", 5.0, p=0.2)])
    assert nudges(out) == []


def test_cooldown_keeps_one_nudge_for_repeated_requests():
    st = stage()
    out = run(st, [
        final("customer", "I want to speak to your manager", 5.0),
        final("customer", "get me a supervisor please", 9.0),
    ])
    assert len(nudges(out, "call_supervisor")) == 1


def test_agent_missteps_and_their_expiry():
    st = stage()
    out = run(st, [final("agent", "sorry but that's not my fault, it was another department", 3.0)])
    (n,) = nudges(out, "avoid_blame")
    out = run(st, [metrics(3.0 + t / 10) for t in range(1, 250)])
    (cleared,) = [e for e in out if isinstance(e, NudgeCleared)]
    assert cleared.how == "resolved" and cleared.followed  # not said again before it expired
    out = run(st, [final("agent", "please calm down", 40.0)])
    assert [x.kind for x in nudges(out)] == ["apologize_well"]


def test_interrupting_the_customer_mid_sentence():
    st = stage()
    events = [metrics(t / 10, customer=(True, -25.0)) for t in range(1, 25)]  # customer talks 2.4 s
    events += [metrics(2.5 + t / 10, agent=(True, -25.0), customer=(True, -25.0)) for t in range(0, 10)]
    out = run(st, events)
    (n,) = nudges(out, "let_them_finish")
    assert n.evidence["customer_speaking_s"] >= 1.0
    later = run(st, [metrics(3.6, agent=(False, -70.0), customer=(True, -25.0))])
    assert any(isinstance(e, NudgeCleared) and e.followed for e in later)
    assert [e for e in out if isinstance(e, Metrics)][-1].interruptions == 1


def test_backchannel_at_the_end_of_a_sentence_is_not_an_interruption():
    st = stage()
    events = [metrics(t / 10, customer=(True, -25.0)) for t in range(1, 25)]
    events += [metrics(2.5 + t / 10, agent=(True, -25.0), customer=(True, -25.0)) for t in range(0, 3)]
    events += [metrics(2.8 + t / 10, agent=(True, -25.0)) for t in range(0, 10)]
    assert nudges(run(st, events)) == []


def test_loud_agent_answering_a_loud_customer_is_told_to_slow_down():
    st = stage()
    calm = [metrics(t / 10, customer=(True, -26.0)) for t in range(0, 60)]
    calm += [metrics(6 + t / 10, agent=(True, -26.0)) for t in range(0, 60)]
    assert nudges(run(st, calm)) == []
    loud = [metrics(12 + t / 10, customer=(True, -18.0)) for t in range(0, 30)]  # +8 dB
    out = run(st, loud)
    assert nudges(out) == [] and [e for e in out if isinstance(e, Metrics)][-1].roles["customer"].loudness_above_baseline_db >= 6
    out = run(st, [metrics(15 + t / 10, agent=(True, -20.0)) for t in range(0, 30)])  # agent +6 dB back
    (n,) = nudges(out, "slow_down")
    assert n.evidence["agent_loud_db"] >= 4 and n.evidence["customer_loud_db"] >= 6
    out = run(st, [metrics(18 + t / 10, agent=(True, -26.0)) for t in range(0, 60)])
    assert any(isinstance(e, NudgeCleared) and e.kind == "slow_down" and e.followed for e in out)


def test_dismissed_nudge_clears_as_dismissed():
    st = stage()
    (n,) = nudges(run(st, [final("customer", "I'll see you in court", 5.0)]))
    (c,) = st.dismiss(n.id, 6.0, 6.0)
    assert c.how == "dismissed" and c.followed is None


def test_summarize_comes_while_a_long_fact_filled_turn_goes_on():
    story = ("so on Tuesday the 14th of March at half past eight I was parked outside the shop on the high street "
             "when a white van reversed into the front of my car and the driver gave me his name and his number "
             "and then he drove off and the bumper is cracked and the headlight is broken and the garage says "
             "it will cost about 600 pounds to fix")
    st = stage()
    growing = replace(pause_partial("customer", story, 16.0, 38.0), pause=False)  # a periodic partial, mid-turn
    (n,) = nudges(run(st, [growing]), "summarize")
    assert n.t == growing.t and n.evidence["facts"] >= 2
    assert nudges(run(st, [later_final(growing)]), "summarize") == []  # one nudge for the turn
