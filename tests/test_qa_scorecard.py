"""The scorecard and the per-second timeline, as pure functions over made-up events (no model, no files).

* the downsampler keeps one point per second but loses neither the peak heat nor the talk time;
* heat in the 30 s before a nudge is compared with the 30 s after it, each nudge on its own;
* the followed rate leaves dismissed nudges out; silence share and talk ratio come from the timeline
  when the call has no end.
"""

from dataclasses import replace

import pytest

from monitor.events import Metrics, RoleMetrics
from monitor.qa.scorecard import NudgeRecord, build_scorecard, heat_between
from monitor.qa.timeline import Downsampler, MetricPoint


def metrics(t, heat=0, agent=False, customer=False, loud=None, interruptions=0):
    roles = {
        "agent": RoleMetrics(speaking=agent, pace_wpm=150.0),
        "customer": RoleMetrics(speaking=customer, loudness_above_baseline_db=loud, hostility=0.1 * heat),
    }
    return Metrics("c-00000000", round(t, 3), 0.0, roles, overlap=agent and customer, silence_s=0.0, heat=heat,
                   interruptions=interruptions, talk_ratio=0.5)


def point(t, heat, quiet=0.0, agent=0.0, customer=0.0):
    return MetricPoint(t=t, heat=heat, heat_mean=float(heat), customer_loud_db=None, agent_loud_db=None,
                       customer_pace_wpm=None, agent_pace_wpm=None, hostility=None, agent_speaking_s=agent,
                       customer_speaking_s=customer, overlap_s=0.0, quiet_s=quiet, interruptions=0, talk_ratio=None)


def test_downsampler_keeps_one_point_per_second_with_the_peak_and_the_talk_time():
    down = Downsampler()
    points = []
    for i in range(1, 31):  # 3 s of 100 ms blocks; a one-block spike of heat 3 at 1.5 s
        t = i / 10
        spike = 3 if i == 15 else 1
        p = down.push(metrics(t, heat=spike, customer=i <= 10, agent=10 < i <= 15, loud=float(i)))
        if p:
            points.append(p)
    points.append(down.flush())
    assert [p.t for p in points] == [1.0, 2.0, 3.0]
    assert [p.heat for p in points] == [1, 3, 1], "the spike must survive downsampling"
    assert points[1].heat_mean == pytest.approx(1.2)
    assert points[0].customer_speaking_s == pytest.approx(1.0)
    assert points[1].agent_speaking_s == pytest.approx(0.5)
    assert points[1].quiet_s == pytest.approx(0.5)
    assert points[2].quiet_s == pytest.approx(1.0)
    assert points[0].customer_loud_db == 10.0, "the loudest moment of the second"
    assert down.flush() is None


def test_heat_before_and_after_each_nudge():
    # calm for 40 s, heated (2) from 40 to 60 s, then calm (0) again; a nudge at 60 s
    points = [point(float(t), 2 if 40 < t <= 60 else 0) for t in range(1, 101)]
    nudges = [NudgeRecord("n1-acknowledge", "acknowledge", 60.0, how="resolved", cleared_t=63.0, followed=True, follow_s=3.0)]
    sc = build_scorecard(points, nudges, duration_s=100.0)
    (n,) = sc.nudges
    # [30, 60) holds the points at 30..59 s: those at 41..59 s are heated, 19 of 30
    assert n.heat_before == pytest.approx(2 * 19 / 30)
    assert n.heat_after == 0.0, "(60, 90] is all calm"
    assert n.calmed is True
    assert sc.heat_before_mean == pytest.approx(n.heat_before)
    assert heat_between(points, 60, 60, lo_open=True, hi_open=False) is None


def test_followed_rate_leaves_dismissed_nudges_out():
    points = [point(float(t), 1, quiet=0.25, agent=0.5, customer=0.25) for t in range(1, 21)]
    nudges = [
        NudgeRecord("n1-slow_down", "slow_down", 5.0, how="resolved", followed=True, follow_s=2.0),
        NudgeRecord("n2-acknowledge", "acknowledge", 8.0, how="expired", followed=False),
        NudgeRecord("n3-acknowledge", "acknowledge", 12.0, how="dismissed", followed=None),
        NudgeRecord("n4-summarize", "summarize", 15.0, how="resolved", followed=True, follow_s=4.0),
    ]
    points[-1] = replace(points[-1], talk_ratio=0.61)  # the analyzer's figure so far, on the last metrics
    sc = build_scorecard(points, nudges, duration_s=20.0, ended=False)
    assert sc.nudges_by_kind == {"slow_down": 1, "acknowledge": 2, "summarize": 1}
    assert (sc.nudges_raised, sc.nudges_followed, sc.nudges_dismissed) == (4, 2, 1)
    assert sc.followed_rate == pytest.approx(2 / 3)
    assert sc.mean_follow_s == pytest.approx(3.0)
    assert sc.silence_share == pytest.approx(0.25)
    assert sc.talk_ratio == 0.61, "no call.ended: the analyzer's last figure stands in"
    assert sc.peak_heat == 1 and sc.mean_heat == 1.0
    row = sc.flat()
    assert row["nudges_acknowledge"] == 2 and row["nudges_set_boundary"] == 0


def test_an_unknown_talk_ratio_stays_unknown():
    """A mono call ends with talk_ratio None: the scorecard must not work out a 0 % or 100 % of its own."""
    points = [point(float(t), 0, customer=1.0) for t in range(1, 11)]
    assert build_scorecard(points, [], duration_s=10.0, talk_ratio=None).talk_ratio is None


def test_the_call_summary_wins_over_the_timeline():
    points = [point(1.0, 1, agent=1.0)]
    sc = build_scorecard(points, [], duration_s=1.0, talk_ratio=0.4, peak_heat=2)
    assert sc.talk_ratio == 0.4 and sc.peak_heat == 2
    assert sc.followed_rate is None and sc.heat_before_mean is None


def test_did_it_help_compares_before_the_trigger_with_after_the_agents_move():
    """The trigger heats the call just before the nudge; the agent follows 10 s later and it calms down.
    Measured from the nudge, the heat the trigger raised made this read "not calmer"; from the move, it helped."""
    points = [point(float(t), 2 if 58 <= t <= 70 else 0) for t in range(1, 121)]
    nudges = [NudgeRecord("n1-acknowledge", "acknowledge", 60.0, how="resolved", cleared_t=70.0, followed=True, follow_s=10.0),
              NudgeRecord("n2-slow_down", "slow_down", 90.0, how="expired", followed=False)]
    sc = build_scorecard(points, nudges, duration_s=120.0, agent_lines=[(61.0, "I'm sorry, that sounds awful"), (95.0, "ok")])
    helped, ignored = sc.nudges
    assert helped.heat_before == pytest.approx(2 * 2 / 30), "[30, 60): only the trigger's first 2 s are heated"
    assert helped.heat_after == 0.0 and helped.heat_peak == 2.0
    assert helped.verdict == "calmer" and helped.calmed is True
    assert helped.agent_said == "I'm sorry, that sounds awful"
    assert heat_between(points, 60, 90, lo_open=True, hi_open=False) > helped.heat_before, "the old window read hotter"
    assert ignored.verdict is None and ignored.heat_after is None, "not followed: no move to measure from"
    assert sc.heat_before_mean == pytest.approx(helped.heat_before) and sc.heat_after_mean == 0.0


def test_quarters_and_talk_per_role():
    points = [point(float(t), 3 if t > 75 else 0, quiet=0.5 if t <= 50 else 0.0, agent=0.5 if t <= 50 else 0.0,
                    customer=0.0 if t <= 50 else 1.0) for t in range(1, 101)]
    sc = build_scorecard(points, [], duration_s=100.0)
    assert [q.heat for q in sc.quarters] == [0.0, 0.0, 0.0, 3.0]
    assert [(q.start, q.end) for q in sc.quarters] == [(0.0, 25.0), (25.0, 50.0), (50.0, 75.0), (75.0, 100.0)]
    assert [q.sentiment for q in sc.quarters] == [None] * 4, "no hostility measured: unknown, not neutral"
    assert (sc.talk.agent_s, sc.talk.customer_s, sc.talk.silence_s) == (25.0, 50.0, 25.0)
    row = sc.flat()
    assert row["heat_q4"] == 3.0 and row["talk_customer_s"] == 50.0 and row["hostility_q1"] is None


def test_an_unknown_talk_ratio_is_shown_as_a_dash_never_zero():
    from monitor.qa.text import scorecard_lines

    sc = build_scorecard([], [], duration_s=30.0)
    assert sc.talk_ratio is None
    line = next(x for x in scorecard_lines(sc) if "talk ratio" in x)
    assert "talk ratio — agent" in line and "0%" not in line
    assert sc.flat()["talk_ratio"] is None
