"""The coach on scripted events: the right nudge, with its evidence, and how it clears.

These run the real analyzer and coach with the lexicon-only scorer (no model) so each rule
is checked in isolation, and call single rules on snapshots built by hand;
tests/test_scenarios.py checks them end to end on generated calls.
"""

from dataclasses import fields, replace

import pytest
from builders import CALL, final, later_final, metrics, pause_partial, periodic_partial

from monitor.analysis.hostility import HostilityScorer
from monitor.analysis.snapshot import RoleView, Snapshot, UtteranceAnalysis
from monitor.coach import rules
from monitor.coach.stage import CoachingStage
from monitor.config import CoachConfig, load_config
from monitor.events import CallEnded, Metrics, Nudge, NudgeCleared, StreamEnded, SupervisorRequested
from monitor.vocab import KINDS


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


def test_acknowledge_waits_for_the_final_not_a_breath_between_sentences():
    st = stage(**{"coach.acknowledge.cooldown_s": 0.0})
    early = pause_partial("customer", "this is the third time I have called about this and nothing works", 8.0)
    assert nudges(run(st, [early]), "acknowledge") == []  # they may be taking a breath
    done = later_final(early)
    (n,) = nudges(run(st, [done]), "acknowledge")
    assert n.t == done.t


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


def test_summarize_comes_at_a_pause_while_a_long_fact_filled_turn_goes_on():
    story = ("so on Tuesday the 14th of March at half past eight I was parked outside the shop on the high street "
             "when a white van reversed into the front of my car and the driver gave me his name and his number "
             "and then he drove off and the bumper is cracked and the headlight is broken and the garage says "
             "it will cost about 600 pounds to fix")
    st = stage()
    at_pause = pause_partial("customer", story, 16.0, 38.0)  # the customer pauses mid-turn
    (n,) = nudges(run(st, [at_pause]), "summarize")
    assert n.t == at_pause.t and n.evidence["facts"] >= 2
    assert nudges(run(st, [later_final(at_pause)]), "summarize") == []  # one nudge for the turn


# -- the contract: periodic partials are for display only ---------------------------------------


def test_periodic_partials_neither_raise_nor_change_what_the_coach_decides():
    words = [
        ("customer", "you are a useless idiot and I want your manager", 10.0),
        ("agent", "sorry but that's not my fault, it was another department", 14.0),
    ]
    with_partials, without = stage(), stage()
    out = run(with_partials, [periodic_partial(role, text, t) for role, text, t in words])
    assert nudges(out) == [] and all(not isinstance(e, NudgeCleared) for e in out)
    assert with_partials.analyzer.snapshot() == without.analyzer.snapshot()
    # What follows is judged exactly as if the partials had never come.
    follow = [final(role, text, t) for role, text, t in words] + [metrics(20.0 + i / 10) for i in range(300)]
    assert [_strip(e) for e in run(with_partials, follow)] == [_strip(e) for e in run(without, follow)]


def test_a_periodic_partial_does_not_clear_a_nudge():
    st = stage()
    (n,) = nudges(run(st, [final("customer", "this is the third time I have called about this and nothing works", 8.0)]))
    out = run(st, [periodic_partial("agent", "I understand, that sounds really frustrating", 12.0, 14.0)])
    assert not [e for e in out if isinstance(e, NudgeCleared)]
    out = run(st, [pause_partial("agent", "I understand, that sounds really frustrating", 12.0, 14.0)])
    assert [(e.id, e.how) for e in out if isinstance(e, NudgeCleared)] == [(n.id, "resolved")]


def test_decisions_do_not_depend_on_the_wall_clock():
    events = [final("customer", "this is ridiculous, I have called five times", 5.0),
              *[metrics(7.0 + i / 10, agent=(True, -20.0)) for i in range(30)],
              final("agent", "please calm down", 9.0)]
    late = [replace(e, wall=e.wall + 3.7 * i) for i, e in enumerate(events)]  # a busy machine: same call times
    assert [_strip(e) for e in run(stage(), events)] == [_strip(e) for e in run(stage(), late)]


def _strip(event):
    return replace(event, wall=0.0)


# -- missing roles are normal -------------------------------------------------------------------


def test_an_agent_only_mono_call_is_coached_on_what_it_has():
    st = stage(**{"audio.mono_role": "agent"})
    events = [metrics(i / 10, agent=(True, -24.0), roles=("agent",)) for i in range(60)]
    events.append(final("agent", "right so what I will do now is quickly check the account and get this sorted today", 6.0, 8.0))
    events += [metrics(8.0 + i / 10, agent=(True, -24.0), roles=("agent",)) for i in range(20)]
    events.append(final("agent", "I guarantee it will be fixed today", 11.0))
    out = run(st, events)
    assert [n.kind for n in nudges(out)] == ["keep_promises"]  # no customer: no slow_down, no crash
    assert all(e.talk_ratio is None for e in out if isinstance(e, Metrics)), "a talk ratio needs both sides"
    (ended,) = [e for e in run(st, [StreamEnded(CALL, 12.0, 12.0, duration=12.0)]) if isinstance(e, CallEnded)]
    assert ended.talk_ratio is None and ended.nudges_raised == 1


def test_rules_do_not_apply_without_the_role_they_need():
    snap = Snapshot(5.0, 3, agent=RoleView(speaking=True, loud=True, fast=True, wpm=300.0))
    for spec in rules.RULES:
        assert spec.judge(snap, _memory(), getattr(CoachConfig(), spec.kind)) == []


# -- the call summary has one owner -------------------------------------------------------------


def test_the_coaching_stage_builds_call_ended_from_what_each_owner_knows():
    st = stage()
    events = [metrics(i / 10, agent=(i < 30, -24.0), customer=(i >= 30, -24.0)) for i in range(40)]
    events.append(final("customer", "I want to speak to your manager", 4.0))
    events += [metrics(4.0 + i / 10) for i in range(1, 10)]
    out = run(st, events + [StreamEnded(CALL, 5.0, 5.1, duration=5.0, error="cut short at 5.0 s")])
    ended = out[-1]
    assert isinstance(ended, CallEnded) and ended.type == "call.ended"
    assert (ended.duration, ended.error, ended.peak_heat, ended.nudges_raised) == (5.0, "cut short at 5.0 s", 2, 1)
    assert ended.talk_ratio == pytest.approx(0.75)  # 3 s of agent speech, 1 s of customer speech
    assert any(isinstance(e, NudgeCleared) and e.how == "expired" for e in out[:-1])  # closed before the summary


# -- absolute yardsticks, heat, clearing --------------------------------------------------------


def test_a_customer_loud_from_the_first_word_heats_the_call():
    st = stage()
    out = run(st, [metrics(i / 10, customer=(True, -10.0)) for i in range(60)])  # shouting from the start
    last = [e for e in out if isinstance(e, Metrics)][-1]
    assert last.roles["customer"].loudness_above_baseline_db == 0.0  # their own baseline is the shout...
    assert last.heat >= 1  # ...but no phone line carries calm speech at -10 LUFS


def test_shouting_on_a_short_call_does_not_become_the_baseline():
    st = stage()
    run(st, [metrics(i / 10, customer=(True, -24.0)) for i in range(25)])  # 2.5 s of calm speech
    out = run(st, [metrics(2.5 + i / 10, customer=(True, -18.0)) for i in range(40)])  # then 4 s, 6 dB louder
    last = [e for e in out if isinstance(e, Metrics)][-1]
    assert last.roles["customer"].loudness_above_baseline_db == 6.0 and last.heat >= 1


def test_an_agent_racing_from_the_start_is_told_to_slow_down_when_the_customer_is_heated():
    st = stage()
    run(st, [final("customer", "this is absolutely ridiculous, I have been waiting for weeks", 1.0)])
    run(st, [metrics(i / 10, customer=(True, -12.0)) for i in range(1, 40)])
    # The agent's first words, about 280 wpm: no usual pace of their own to compare with yet.
    fast = final("agent", "right okay so let me just quickly pull up the account and see what is going on there", 5.0, 8.6)
    (n,) = nudges(run(st, [fast]), "slow_down")
    assert n.evidence["agent_wpm"] >= 240 and "wpm" in n.reason


def test_slow_down_rule_on_a_hand_built_snapshot():
    hot = RoleView(speaking=False, loud=True, lufs=-11.0)
    agent = RoleView(speaking=True, wpm=260.0, fast=True)
    said = _utterance("agent", "so yes we can look at that now and get it done", seq=4)
    (want,) = rules.slow_down(Snapshot(9.0, 1, agent, hot, utterance=said), _memory(), CoachConfig().slow_down)
    assert isinstance(want, rules.Raise) and want.evidence["agent_wpm"] == 260.0
    # The same agent answering a calm customer: nothing to say.
    calm = RoleView(speaking=False, lufs=-24.0)
    assert rules.slow_down(Snapshot(9.0, 0, agent, calm, utterance=said), _memory(), CoachConfig().slow_down) == []


def test_heat_falls_within_a_few_seconds_once_the_customer_is_calm():
    st = stage()
    run(st, [final("customer", "you people are useless and I will see you in court", 2.0)])
    out = run(st, [metrics(5.0 + i / 10) for i in range(20)])
    assert [e for e in out if isinstance(e, Metrics)][-1].heat == 3
    run(st, [final("customer", "okay thank you, that would be great", 8.0)])
    out = run(st, [metrics(10.5 + i / 10) for i in range(60)])
    calm_at = next(e.t for e in out if isinstance(e, Metrics) and e.heat == 0)
    assert calm_at - 10.5 <= 4.0, f"heat fell to calm only at {calm_at}"


def test_slow_down_clears_once_the_customer_is_calm():
    st = stage()
    run(st, [metrics(i / 10, customer=(True, -26.0)) for i in range(60)])
    run(st, [metrics(6 + i / 10, agent=(True, -26.0)) for i in range(60)])
    run(st, [metrics(12 + i / 10, customer=(True, -17.0)) for i in range(30)])
    (n,) = nudges(run(st, [metrics(15 + i / 10, agent=(True, -19.0)) for i in range(10)]), "slow_down")
    run(st, [metrics(16 + i / 10) for i in range(5)])
    # The customer speaks calmly again; the agent has not said a word since.
    out = run(st, [metrics(16.5 + i / 10, customer=(True, -26.0)) for i in range(40)])
    out += run(st, [final("customer", "okay, that is fine, thank you for sorting it", 16.5, 20.5)])
    out += run(st, [metrics(20.5 + i / 10) for i in range(50)])
    (cleared,) = [e for e in out if isinstance(e, NudgeCleared)]
    assert (cleared.id, cleared.how) == (n.id, "resolved") and cleared.t < 26.0


def test_call_supervisor_clears_when_the_agent_brings_the_supervisor_in():
    st = stage()
    (n,) = nudges(run(st, [final("customer", "I want to speak to your manager", 5.0)]))
    out = st(SupervisorRequested(CALL, 8.0, 8.0))
    assert isinstance(out[0], SupervisorRequested)
    (cleared,) = [e for e in out if isinstance(e, NudgeCleared)]
    assert (cleared.id, cleared.how, cleared.followed) == (n.id, "resolved", True)
    # Asking again while the supervisor is on the way raises nothing new...
    out = run(st, [metrics(8.0 + i / 10) for i in range(700)] + [final("customer", "where is this manager then", 80.0)])
    assert nudges(out, "call_supervisor") == []
    # ...but a threat of violence always does.
    assert nudges(run(st, [final("customer", "I know where you work", 90.0)]), "call_supervisor")


def test_saying_the_handoff_clears_call_supervisor():
    st = stage()
    (n,) = nudges(run(st, [final("customer", "I'll see you in court", 5.0)]))
    out = run(st, [final("agent", "I'm going to ask my supervisor to join us", 7.0)])
    assert [(e.id, e.how) for e in out if isinstance(e, NudgeCleared)] == [(n.id, "resolved")]


@pytest.mark.parametrize("text", [
    "are you kidding me, this bloody website has logged me out again",
    "oh for crying out loud, your damn app is useless",
    "you know what, this whole service is a joke",
    "sorry, the signal here is crap, you keep cutting out",
])
def test_exasperation_at_the_company_is_not_abuse_of_the_agent(text):
    assert nudges(run(stage(), [final("customer", text, 5.0)]), "set_boundary") == []


def test_swearing_at_the_agent_is_abuse():
    (n,) = nudges(run(stage(), [final("customer", "honestly, you are bloody hopeless at this", 5.0)]), "set_boundary")
    assert n.evidence["category"] in ("insult", "profanity")
    (n,) = nudges(run(stage(), [final("customer", "oh shut up, you're crap at your job", 5.0)]), "set_boundary")


def test_a_long_vented_complaint_gets_acknowledged():
    vent = ("so the engineer was meant to come on Monday and nobody turned up and then I waited in all day Tuesday "
            "as well and now the router is not working and I am losing money every day")
    (n,) = nudges(run(stage(), [final("customer", vent, 5.0, 15.0)]), "acknowledge")
    assert "long complaint" in n.reason


def _memory(**kw):
    base = {"open": {}, "raised_from": frozenset(), "boundary_seq": None, "supervisor_in": False}
    return rules.Memory(**{**base, **kw})


def _utterance(role, text, seq):
    f = final(role, text, 5.0)
    return UtteranceAnalysis(seq, role, True, f.t, f.start, f.end, text, f.words, [], 0.0, None, 0, 0.9)


def test_one_rule_per_kind_each_with_its_config_section():
    assert sorted(spec.kind for spec in rules.RULES) == sorted(KINDS)
    assert {f.name for f in fields(CoachConfig)} == set(KINDS)


def test_a_misstep_is_flagged_once_the_agent_finishes_the_utterance():
    st = stage()
    said = pause_partial("agent", "well I'm sorry you feel that way", 10.0)
    assert nudges(run(st, [said])) == []  # mid-sentence: the banner would only distract
    (n,) = nudges(run(st, [later_final(said, "well I'm sorry you feel that way but the line test looks normal")]))
    assert n.kind == "apologize_well"


def test_an_agent_racing_at_a_calm_customer_is_told_to_slow_down_once_it_goes_on():
    st = stage()
    run(st, [final("customer", "hi I would like to know why my direct debit went up", 1.0, 4.0)])
    run(st, [metrics(4.0 + i / 10, customer=(False, -24.0)) for i in range(5)])
    first = "right so your usage went up over the winter and the unit rate changed in april"  # 16 words in 3 s
    assert nudges(run(st, [final("agent", first, 4.5, 7.5)]), "slow_down") == []  # once could be the timing
    run(st, [final("customer", "sorry could you say that again", 8.0, 9.5)])
    again = "yes so basically the rate went up and you used more so the payment went up it is all automatic"
    (n,) = nudges(run(st, [final("agent", again, 10.0, 13.5)]), "slow_down")
    assert "calm" in n.reason and n.evidence["agent_wpm"] >= 280
