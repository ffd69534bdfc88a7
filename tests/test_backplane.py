"""Several hubs on one real redis-server: any hub takes an agent, any hub shows every call, in order; a viewer
resumes from its position on another hub; a hub killed with -9 loses nothing; a Redis outage is survived.

Every hub is a real `callmon hub --redis` subprocess, every client a real websocket client or the agent's
real publisher; each test uses its own Redis database so boards do not mix. No timing assertions.
"""

from __future__ import annotations

import json
import time

from conftest import FLOOR_WAIT_S as WAIT_S
from conftest import FloorAgent, FloorViewer, RedisServer, floor_token_file
from conftest import call_final as final
from conftest import call_started as started

from monitor.events import CallEnded, Nudge, SupervisorRequested
from monitor.floor.publisher import HubPublisher


def _db(redis_server: RedisServer, n: int) -> str:
    return redis_server.url.rsplit("/", 1)[0] + f"/{n}"


def test_an_agent_on_one_hub_is_seen_in_order_on_another_and_the_lead_loop_crosses_hubs(
        tmp_path, redis_server, start_hub):
    path = tmp_path / "tokens.toml"
    tokens = floor_token_file(path)
    a = start_hub(path, "--redis", _db(redis_server, 5))
    b = start_hub(path, "--redis", _db(redis_server, 5))
    on_b = FloorViewer(b.url, tokens["viewer"])
    alice = FloorAgent(a.url, tokens["alice"], "alice", "c-0000ba01")
    try:
        for i in range(60):  # a burst, as fast as the link takes it: order must hold across the backplane
            alice.says(1.0 + i, "customer", f"line {i}")
        alice.supervisor(70.0, "wants a manager")
        on_b.wait("every line and the request on the other hub",
                  lambda v: v.calls.get("c-0000ba01", {}).get("supervisor_requests"))
        assert [line["text"] for line in on_b.calls["c-0000ba01"]["transcript"]] == [f"line {i}" for i in range(60)]

        on_b.send({"type": "ack", "call_id": "c-0000ba01"})  # the lead is on hub B, the agent on hub A
        on_b.send({"type": "whisper", "call_id": "c-0000ba01", "text": "offer the credit"})
        ack, whisper = alice.lead_messages(2)
        assert (ack["kind"], whisper["kind"], whisper["text"]) == ("ack", "whisper", "offer the credit")
        on_a = FloorViewer(a.url, tokens["viewer"])
        assert on_a.calls["c-0000ba01"]["ack"]["requests"] == 1, "every lead sees the acknowledgement"
        assert [w["text"] for w in on_a.calls["c-0000ba01"]["whispers"]] == ["offer the credit"]
        on_a.close()
        assert "viewer lead whispered to alice's call c-0000ba01: offer the credit" in b.output(), "audited"
    finally:
        alice.close()
        on_b.close()


def test_a_viewer_resumes_on_another_hub_from_its_position_or_gets_a_fresh_snapshot(tmp_path, redis_server, start_hub):
    path = tmp_path / "tokens.toml"
    tokens = floor_token_file(path)
    a = start_hub(path, "--redis", _db(redis_server, 6))
    b = start_hub(path, "--redis", _db(redis_server, 6))
    bob = FloorAgent(a.url, tokens["bob"], "bob", "c-0000be01")
    try:
        bob.says(1.0, "customer", "before")
        viewer = FloorViewer(a.url, tokens["viewer"])
        viewer.wait("the first line", lambda v: v.calls.get("c-0000be01", {}).get("transcript"))
        pos = viewer.pos
        viewer.close()
        bob.says(2.0, "customer", "while away")
        bob.metrics(2.5, heat=2, hostility=0.6)
        # a viewer that has seen up to pos reconnects to the other hub
        probe = FloorViewer(b.url, tokens["viewer"])
        probe.wait("the line said while away, on hub B", lambda v: v.calls.get("c-0000be01", {}).get("heat") == 2)
        probe.close()
        back = FloorViewer(b.url, tokens["viewer"], since=pos)
        assert back.snapshot["resumed"] is True
        call = next(c for c in back.snapshot["calls"] if c["call_id"] == "c-0000be01")
        assert [line["text"] for line in call["transcript"]] == ["while away"], "only what followed its position"
        assert call["heat"] == 2
        back.close()
        stale = FloorViewer(b.url, tokens["viewer"], since="1-0")  # long trimmed from the stream
        assert stale.snapshot["resumed"] is False
        assert [line["text"] for line in stale.calls["c-0000be01"]["transcript"]] == ["before", "while away"]
        stale.close()
    finally:
        bob.close()


def test_kill_9_of_a_hub_loses_no_request_alert_acknowledgement_or_call_end(tmp_path, redis_server, start_hub):
    path = tmp_path / "tokens.toml"
    tokens = floor_token_file(path)
    a = start_hub(path, "--redis", _db(redis_server, 7))
    b = start_hub(path, "--redis", _db(redis_server, 7))
    call = "c-0000bf01"
    # the agent's publisher knows both hubs (as behind a load balancer): it starts on A
    publisher = HubPublisher(f"{a.url},{b.url}", tokens["alice"], "alice")
    try:
        publisher(started(call, "alice"))
        publisher(final(call, 2.0, "customer", "I want to speak to your manager"))
        publisher(SupervisorRequested(call, 2.5, 2.5, "manager asked for"))
        publisher(Nudge(call, 3.0, 3.0, "n1-call_supervisor", "call_supervisor", "critical", "Bring in your supervisor",
                        "asked for a manager"))
        on_a = FloorViewer(a.url, tokens["viewer"])
        on_a.wait("the nudge on A", lambda v: v.calls.get(call, {}).get("nudges"))
        on_a.send({"type": "ack", "call_id": call})
        on_a.wait("the ack on A", lambda v: v.calls[call].get("ack"))
        end = time.monotonic() + WAIT_S
        while not publisher.lead:
            assert time.monotonic() < end, "the agent never got the acknowledgement"
            time.sleep(0.05)
        a.kill()  # kill -9: no goodbye, no flush
        on_a.close()

        publisher(final(call, 5.0, "customer", "said after hub A died"))
        publisher(CallEnded(call, 6.0, 6.0, 6.0, 3, 1, 0, 0.5))
        on_b = FloorViewer(b.url, tokens["viewer"])
        on_b.wait("the call's end, published through hub B", lambda v: v.calls.get(call, {}).get("status") == "ended")
        seen = on_b.calls[call]
        assert seen["supervisor_requests"] == [{"t": 2.5, "note": "manager asked for"}]
        assert [n["kind"] for n in seen["nudges"]] == ["call_supervisor"]
        assert seen["ack"]["requests"] == 1 and seen["ack"]["nudges"] == ["n1-call_supervisor"]
        assert [line["text"] for line in seen["transcript"]] == ["I want to speak to your manager", "said after hub A died"]
        on_b.close()

        # a hub started after all this loads the board from Redis alone
        c = start_hub(path, "--redis", _db(redis_server, 7))
        late = FloorViewer(c.url, tokens["viewer"])
        assert late.calls[call]["status"] == "ended" and late.calls[call]["ack"]["by"] == "lead"
        late.close()
    finally:
        publisher.close(timeout=1.0)


def test_a_redis_outage_is_one_log_line_a_status_for_viewers_and_a_resync_after(tmp_path, start_hub):
    server = RedisServer(tmp_path)
    path = tmp_path / "tokens.toml"
    tokens = floor_token_file(path)
    hub = start_hub(path, "--redis", server.url)
    call = "c-0000bd01"
    publisher = HubPublisher(hub.url, tokens["alice"], "alice")
    try:
        publisher(started(call, "alice"))
        publisher(SupervisorRequested(call, 1.0, 1.0, "before the outage"))
        viewer = FloorViewer(hub.url, tokens["viewer"])
        viewer.wait("the request", lambda v: v.calls.get(call, {}).get("supervisor_requests"))
        server.stop()
        publisher(final(call, 3.0, "customer", "said while redis was down"))
        viewer.wait("the status saying the backplane is down", lambda v: any(s.startswith("down") for s in v.statuses))
        viewer.wait("the line, served by the hub alone meanwhile",
                    lambda v: v.calls[call]["last_customer_line"] == "said while redis was down")
        time.sleep(1.5)  # a few reconnection attempts, which must not flood the log
        server = RedisServer(tmp_path, port=server.port)  # back, empty (no persistence)
        viewer.wait("the status back to ok", lambda v: v.statuses and v.statuses[-1] == "ok")
        later = start_hub(path, "--redis", server.url)  # a hub that knows only what is in Redis now
        fresh = FloorViewer(later.url, tokens["viewer"])
        fresh.wait("the call, re-sent by the publisher into Redis",
                   lambda v: v.calls.get(call, {}).get("last_customer_line") == "said while redis was down")
        assert fresh.calls[call]["supervisor_requests"] == [{"t": 1.0, "note": "before the outage"}]
        fresh.close()
        viewer.close()
        log = hub.output()
        assert log.count("is unreachable") == 1, log
        assert "Traceback" not in log, log
    finally:
        publisher.close(timeout=1.0)
        server.stop()


def test_floor_no_tui_prints_the_snapshot_and_changes_as_json_lines(tmp_path, redis_server, start_hub):
    import subprocess
    import sys

    from conftest import REPO_ROOT

    path = tmp_path / "tokens.toml"
    tokens = floor_token_file(path)
    hub = start_hub(path, "--redis", _db(redis_server, 8))
    bob = FloorAgent(hub.url, tokens["bob"], "bob", "c-0000bc01")
    # The call reaches the board through Redis, not through the link the script will open: wait for it there, or
    # the script's snapshot may come before it.
    FloorViewer(hub.url, tokens["viewer"]).wait("bob's call on the board", lambda v: "c-0000bc01" in v.calls).close()
    out = tmp_path / "floor.jsonl"
    with open(out, "w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "floor", "--hub", hub.url, "--token", tokens["viewer"], "--no-tui",
             "--format", "jsonl"], cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.PIPE, text=True,
        )
    try:
        def lines():
            return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]

        end = time.monotonic() + WAIT_S
        while not any(m["type"] == "snapshot" for m in lines()):
            if proc.poll() is not None:
                raise AssertionError(f"callmon floor exited with {proc.returncode} before a snapshot: "
                                     f"{proc.stderr.read()}\nhub log:\n{hub.output()}")
            assert time.monotonic() < end, f"no snapshot line: {lines()}"
            time.sleep(0.05)
        bob.says(3.0, "customer", "a line for the script")
        while not any(m["type"] == "update" and m.get("lines") for m in lines()):
            assert time.monotonic() < end, f"no update line: {lines()}"
            time.sleep(0.05)
        got = lines()
        assert got[0] == {"type": "link", "state": "connecting", "detail": ""}
        assert {"type": "link", "state": "connected", "detail": ""} in got
        snapshot = next(m for m in got if m["type"] == "snapshot")
        assert [c["call_id"] for c in snapshot["calls"]] == ["c-0000bc01"]
        update = next(m for m in got if m["type"] == "update" and m.get("lines"))
        assert update["lines"] == [{"role": "customer", "text": "a line for the script", "t": 2.0}]
        assert all(m["type"] != "batch" for m in got), "a batch is written as the messages in it"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=WAIT_S)
        bob.close()
    assert proc.returncode == 0 and err == "", err
