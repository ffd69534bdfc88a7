"""The scorecard and the per-second timeline, as pure functions over made-up events (no model, no files).

* the downsampler keeps one point per second but loses neither the peak heat nor the talk time;
* heat in the 30 s before a nudge is compared with the 30 s after it, each nudge on its own;
* the followed rate leaves dismissed nudges out; silence share and talk ratio come from the timeline
  when the call has no end.
"""

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
    sc = build_scorecard(points, nudges, duration_s=20.0)
    assert sc.nudges_by_kind == {"slow_down": 1, "acknowledge": 2, "summarize": 1}
    assert (sc.nudges_raised, sc.nudges_followed, sc.nudges_dismissed) == (4, 2, 1)
    assert sc.followed_rate == pytest.approx(2 / 3)
    assert sc.mean_follow_s == pytest.approx(3.0)
    assert sc.silence_share == pytest.approx(0.25)
    assert sc.talk_ratio == pytest.approx(2 / 3), "no call.ended: the timeline's talk times decide"
    assert sc.peak_heat == 1 and sc.mean_heat == 1.0
    row = sc.flat()
    assert row["nudges_acknowledge"] == 2 and row["nudges_set_boundary"] == 0


def test_the_call_summary_wins_over_the_timeline():
    points = [point(1.0, 1, agent=1.0)]
    sc = build_scorecard(points, [], duration_s=1.0, talk_ratio=0.4, peak_heat=2)
    assert sc.talk_ratio == 0.4 and sc.peak_heat == 2
    assert sc.followed_rate is None and sc.heat_before_mean is None
