"""The team lead's terminal dashboard (`callmon floor`): the board's state rules, then the Textual app
driven with Pilot against a real `callmon hub` subprocess, with agents publishing schema-1 events over
real websockets on loopback."""

from __future__ import annotations

import asyncio
import time

import pytest
from conftest import FloorAgent as Agent
from conftest import callmon, calm_talk, escalate, floor_token_file, free_port, start_calls

from monitor.floor.client import alerts, apply, rank


def call(call_id, agent, heat=0, hostility=0.0, t=10.0, **extra):
    base = {
        "call_id": call_id, "agent_id": agent, "status": "live", "started_at": time.time() - t, "t": t, "heat": heat,
        "customer": {"loudness_db": 1.0, "pace_wpm": 150.0, "hostility": hostility},
        "agent": {"pace_wpm": 140.0, "talk_ratio": 0.5}, "nudges": [], "supervisor_requests": [],
        "last_customer_line": "", "transcript": [],
    }
    base.update(extra)
    return base


# ---------------------------------------------------------------------------------------------
# the board's rules, without sockets


def test_snapshot_update_removed_keep_the_board():
    calls = {}
    apply(calls, {"type": "snapshot", "calls": [call("c-a", "alice", transcript=[{"role": "customer", "text": "hi", "t": 1.0}])]})
    apply(calls, {"type": "update", "call_id": "c-b", "set": call("c-b", "bob")})
    apply(calls, {"type": "update", "call_id": "c-a", "set": {"heat": 2}, "lines": [{"role": "agent", "text": "hello", "t": 2.0}]})
    assert set(calls) == {"c-a", "c-b"}
    assert calls["c-a"]["heat"] == 2 and calls["c-a"]["agent_id"] == "alice"
    assert [line["text"] for line in calls["c-a"]["transcript"]] == ["hi", "hello"]
    apply(calls, {"type": "removed", "call_id": "c-b"})
    assert set(calls) == {"c-a"}


def test_reconnect_snapshot_keeps_the_transcript_already_seen():
    calls = {}
    lines = [{"role": "customer", "text": f"line {i}", "t": float(i)} for i in range(30)]
    apply(calls, {"type": "snapshot", "calls": [call("c-a", "alice", transcript=lines[:20])]})
    apply(calls, {"type": "update", "call_id": "c-a", "set": {}, "lines": lines[20:25]})
    # The hub's snapshot after a reconnect holds only the last 20 lines, some of which we missed.
    apply(calls, {"type": "snapshot", "calls": [call("c-a", "alice", transcript=lines[10:30])]})
    assert [line["text"] for line in calls["c-a"]["transcript"]] == [f"line {i}" for i in range(30)]


def test_rank_live_before_ended_alerts_first_then_heat_hostility_duration():
    calls = {c["call_id"]: c for c in (
        call("c-calm-long", "a", heat=0, t=900), call("c-hot", "b", heat=3, hostility=0.2),
        call("c-heated-hostile", "c", heat=2, hostility=0.9), call("c-heated", "d", heat=2, hostility=0.3, t=50),
        call("c-heated-longer", "e", heat=2, hostility=0.3, t=500), call("c-new", "f", heat=None),
        call("c-ended-hot", "g", heat=3, hostility=1.0, status="ended", supervisor_requests=[{"t": 3.0, "note": ""}]),
        call("c-asking", "h", heat=0, supervisor_requests=[{"t": 3.0, "note": "refund"}]),
        call("c-asked-acked", "i", heat=0, supervisor_requests=[{"t": 3.0, "note": ""}],
             ack={"by": "lead", "at": 1.0, "requests": 1, "nudges": []}),
    )}
    assert [c["call_id"] for c in rank(calls)] == [
        "c-asking", "c-hot", "c-heated-hostile", "c-heated-longer", "c-heated", "c-calm-long", "c-asked-acked", "c-new",
        "c-ended-hot",
    ]


def test_alerts_for_supervisor_requests_and_call_supervisor_nudges_until_a_lead_acknowledges():
    nudge = {"id": "n4-call_supervisor", "kind": "call_supervisor", "severity": "critical", "message": "Call them", "t": 40.0}
    calls = {c["call_id"]: c for c in (
        call("c-a", "alice", supervisor_requests=[{"t": 12.0, "note": ""}]),
        call("c-b", "bob", heat=3, nudges=[nudge]),
        call("c-c", "carol", nudges=[{**nudge, "kind": "set_boundary", "id": "n1-set_boundary"}]),
    )}
    found = alerts(calls)
    assert [(a.agent_id, a.kind) for a in found] == [("bob", "call_supervisor"), ("alice", "supervisor_request")]
    apply(calls, {"type": "update", "call_id": "c-a", "set": {"ack": {"by": "lead", "at": 1.0, "requests": 1, "nudges": []}}})
    assert [a.agent_id for a in alerts(calls)] == ["bob"]
    # A second request on the same call alerts again.
    apply(calls, {"type": "update", "call_id": "c-a", "set": {"supervisor_requests": [{"t": 12.0}, {"t": 30.0, "note": "again"}]}})
    assert [(a.agent_id, a.text) for a in alerts(calls)] == [("bob", "Call them"), ("alice", "again")]
    apply(calls, {"type": "update", "call_id": "c-b",
                  "set": {"ack": {"by": "lead", "at": 2.0, "requests": 0, "nudges": ["n4-call_supervisor"]}}})
    assert [a.agent_id for a in alerts(calls)] == ["alice"]
    # a batch frame holds several messages, applied in order
    apply(calls, {"type": "batch", "pos": "1-1", "messages": [
        {"type": "update", "call_id": "c-c", "set": {"heat": 2}}, {"type": "removed", "call_id": "c-c"}]})
    assert "c-c" not in calls


def test_bad_hub_address_is_bad_input():
    from monitor.errors import BadInput
    from monitor.floor.client import ws_url

    assert ws_url("ws://floor:8765") == "ws://floor:8765/ws"
    assert ws_url("http://floor:8765/") == "ws://floor:8765/ws"
    with pytest.raises(BadInput, match="ws://HOST:PORT"):
        ws_url("floor:8765")


def test_floor_without_a_token_says_how_to_give_one(monkeypatch):
    from argparse import Namespace

    from monitor.errors import BadInput
    from monitor.floor.dashboard import run_floor

    monkeypatch.delenv("CALLMON_TOKEN", raising=False)
    with pytest.raises(BadInput, match="--token or set CALLMON_TOKEN"):
        run_floor(Namespace(hub="ws://127.0.0.1:9", token=None))


# ---------------------------------------------------------------------------------------------
# a real hub, real agents publishing schema-1 events


@pytest.fixture(scope="module")
def floor_tokens(tmp_path_factory):
    """A token file with a viewer token and agent tokens for alice and bob (made once per module)."""
    path = tmp_path_factory.mktemp("floor") / "floor-tokens.toml"
    return path, floor_token_file(path)


@pytest.fixture
def hub(floor_tokens, start_hub):
    return start_hub(floor_tokens[0])


async def until(pilot, predicate, what, limit=30.0):
    """Wait (polling the UI) until `predicate()` holds; fail saying what never happened."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}; the board shows {rows_shown(pilot.app)}")
        await pilot.pause(0.05)


async def open_with_keys(pilot, app, call_id):
    """Move the cursor to a call's row with the arrow keys and press Enter."""
    for _ in range(len(board(app))):
        here = app.table.cursor_row
        if board(app)[here] == call_id:
            break
        await pilot.press("up" if board(app).index(call_id) < here else "down")
    await pilot.press("enter")


def board(app):
    """Call ids in the order the board shows them."""
    return [str(row.key.value) for row in app.table.ordered_rows]


def rows_shown(app):
    """The board's rows as the screen shows them (header excluded), cropped to the table's width."""
    table = app.table
    return [table.render_line(y).text for y in range(1, 1 + table.row_count)]


def text_of(call_screen):
    """The transcript lines a drilled-in call shows."""
    return "\n".join(strip.text for strip in call_screen.query_one("#transcript").lines)


def plain(widget):
    """The text a Static shows."""
    content = widget.content
    return getattr(content, "plain", str(content))


def test_board_ranks_live_calls_alerts_and_drills_into_a_transcript(hub, floor_tokens):
    from monitor.floor.dashboard import CallScreen, FloorApp, HelpScreen

    tokens = floor_tokens[1]
    agents = []

    async def scenario():
        app = FloorApp(hub.url, tokens["viewer"])
        async with app.run_test(size=(150, 32)) as pilot:
            await until(pilot, lambda: "connected" in plain(app.status_line), "the board connects")
            # The calls start while the board is open: each row appears from a bare call.started and
            # then grows (the columns must widen to show it all).
            alice, bob = await asyncio.to_thread(start_calls, hub, tokens)
            agents.extend((alice, bob))
            await until(pilot, lambda: len(board(app)) == 2, "two bare rows")
            await asyncio.to_thread(calm_talk, alice, bob)
            await until(pilot, lambda: board(app) == ["c-0000aaaa", "c-0000bbbb"], "both calls, the more hostile first")
            # Bob's lines and his metrics may come in separate frames (the hub sends what it has folded): wait for
            # the row to show all of them.
            await until(pilot, lambda: rows_shown(app)[1].split()[:4] == ["bob", "00:20", "·", "calm"]
                        and "hello I am calling about my bill" in rows_shown(app)[1], "bob's row: time, heat, last line")
            assert not app.alert_bar.display

            escalate(bob)
            await until(pilot, lambda: board(app)[0] == "c-0000bbbb", "bob's escalated call moves to the top")
            await until(pilot, lambda: "bob" in plain(app.alert_bar), "the alert names bob")
            assert app.alert_bar.display and "call the supervisor" in plain(app.alert_bar)
            await until(pilot, lambda: "this is useless get me your manager right now" in rows_shown(app)[0], "bob's new line")
            top = rows_shown(app)[0]
            for shown in ("⚑ bob", "00:24", "▲▲▲ CRITICAL", "+9.5 dB", "210 wpm", "0.92", "‼ call supervisor"):
                assert shown in top, f"{shown!r} is not on bob's row: {top!r}"

            alice.supervisor(31.0, "customer wants a refund over the limit")
            await until(pilot, lambda: "alice asked for a supervisor" in plain(app.alert_bar), "alice's request alerts")

            await open_with_keys(pilot, app, "c-0000bbbb")
            await until(pilot, lambda: isinstance(app.screen, CallScreen), "bob's call opens")
            assert app.screen.call_id == "c-0000bbbb"
            text = lambda: text_of(app.screen)  # noqa: E731
            await until(pilot, lambda: "get me your manager right now" in text(), "bob's transcript")
            assert "hello I am calling about my bill" in text() and "happy to help with that" in text()
            assert "NUDGE call supervisor" in text()
            bob.says(26.0, "agent", "I am getting my supervisor for you")
            await until(pilot, lambda: "I am getting my supervisor for you" in text(), "a new line arrives live")

            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, CallScreen), "back on the board")
            await pilot.click("#calls", offset=(4, 2))  # one click on the second row (under the header) opens it
            await until(pilot, lambda: isinstance(app.screen, CallScreen), "a click opens alice's call")
            assert app.screen.call_id == "c-0000aaaa"
            await until(pilot, lambda: "my parcel is late again" in text_of(app.screen), "alice's transcript")
            await pilot.press("w")  # a whisper to alice's screen
            await pilot.press(*"offer the goodwill credit, call 07700 900123")
            await pilot.press("enter")
            (whisper,) = await asyncio.to_thread(alice.lead_messages, 1)
            assert whisper == {"type": "lead", "call_id": "c-0000aaaa", "kind": "whisper", "by": "lead",
                               "text": "offer the goodwill credit, call [phone]"}, "redacted on the way"
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, CallScreen), "back on the board again")
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the keys are shown")
            await pilot.press("escape")
            await until(pilot, lambda: board(app)[0] == "c-0000bbbb", "bob's alerting, critical call first")
            await pilot.press("up")  # the cursor was on alice's row (clicked): up to bob's
            await pilot.press("a")  # acknowledge bob's call
            (ack,) = await asyncio.to_thread(bob.lead_messages, 1)
            assert (ack["kind"], ack["call_id"], ack["by"]) == ("ack", "c-0000bbbb", "lead")
            await until(pilot, lambda: "bob" not in plain(app.alert_bar), "an acknowledged call stops alerting")
            assert "alice" in plain(app.alert_bar)  # alice's request has not been acknowledged
            await until(pilot, lambda: board(app) == ["c-0000aaaa", "c-0000bbbb"], "the call still alerting ranks first")
            await pilot.press("q")
        return app

    try:
        app = asyncio.run(scenario())
    finally:
        for agent in agents:
            agent.close()
    assert not app.is_running  # q quit


def test_dashboard_opens_while_the_hub_is_down_and_connects_when_it_starts(floor_tokens, start_hub):
    from monitor.floor.dashboard import FloorApp

    tokens_file, tokens = floor_tokens
    port = free_port()

    async def scenario():
        app = FloorApp(f"ws://127.0.0.1:{port}", tokens["viewer"])
        async with app.run_test(size=(120, 24)) as pilot:
            await until(pilot, lambda: "hub down, retrying" in plain(app.status_line), "the board says the hub is down")
            late = await asyncio.to_thread(start_hub, tokens_file, port=port)
            try:
                bob = await asyncio.to_thread(Agent, late.url, tokens["bob"], "bob", "c-0000bbbb")
                await until(pilot, lambda: "connected" in plain(app.status_line), "the board connects")
                await until(pilot, lambda: board(app) == ["c-0000bbbb"], "bob's call appears")
                bob.close()
            finally:
                late.stop()
            await pilot.press("q")

    asyncio.run(scenario())


def test_floor_with_a_refused_token_is_one_line_and_exit_2(hub, floor_tokens):
    wrong = callmon("floor", "--hub", hub.url, "--token", "not-a-real-token", timeout=60)
    assert wrong.returncode == 2
    assert wrong.stderr.count("\n") == 1 and wrong.stderr.startswith("callmon: error: the hub at ")
    assert "refused the token" in wrong.stderr and "--role viewer" in wrong.stderr

    agent = callmon("floor", "--hub", hub.url, "--token", floor_tokens[1]["alice"], timeout=60)
    assert agent.returncode == 2
    assert agent.stderr.count("\n") == 1 and "agent token; the floor needs a viewer token" in agent.stderr
