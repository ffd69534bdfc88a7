"""`callmon hub`: tokens, the auth matrix, bad clients, snapshot and deltas, stale and ended calls, TLS.

Every test runs a real `callmon hub` subprocess on loopback (the module's on a real redis-server: the
`floor` fixture in conftest.py) and talks to it with real websocket clients, as an agent's publisher
and a team lead's dashboard would. No test asserts a duration: waits have generous limits and only
say how long to look before calling a thing missing.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import ssl
import subprocess
import threading
import time

import pytest
from conftest import FLOOR_WAIT_S as WAIT_S
from conftest import REPO_ROOT, FloorViewer, floor_token_file
from conftest import call_final as final
from conftest import call_metrics as metrics
from conftest import call_started as started
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from monitor.events import (
    CallEnded,
    Nudge,
    NudgeCleared,
    SupervisorRequested,
)
from monitor.floor.tokens import add_token, hash_token, load_tokens, new_token

POLICY = 1008
TOO_BIG = 1009


@contextlib.contextmanager
def agent(url: str, token: str, ssl_context: ssl.SSLContext | None = None):
    """A raw agent connection after its welcome (the publisher's protocol, by hand)."""
    kwargs = {"ssl": ssl_context} if ssl_context else {}
    with connect(url, open_timeout=WAIT_S, **kwargs) as ws:
        ws.send(json.dumps({"type": "hello", "token": token}))
        welcome = json.loads(ws.recv(timeout=WAIT_S))
        assert welcome["type"] == "welcome", welcome
        yield ws


def send(ws: ClientConnection, *events) -> None:
    for event in events:
        ws.send(event if isinstance(event, str) else json.dumps(event.to_dict()))


def closed_with(ws: ClientConnection, timeout: float = WAIT_S) -> tuple[int | None, str, list[dict]]:
    """Read until the hub closes the connection: (close code, reason, messages received before)."""
    got = []
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            got.append(json.loads(ws.recv(timeout=end - time.monotonic())))
    except ConnectionClosed as exc:
        return (exc.rcvd.code if exc.rcvd else None), (exc.rcvd.reason if exc.rcvd else ""), got
    raise AssertionError(f"the hub did not close the connection; got {got}")


# --- the token file and the command line --------------------------------------------------------


def test_token_command_prints_the_token_once_and_stores_only_its_hash(run_callmon, tmp_path):
    path = tmp_path / "tokens.toml"
    result = run_callmon("hub", "token", "--role", "agent", "--agent-id", "alice", "--tokens", path)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert len(token) >= 32 and "\n" not in token
    text = path.read_text()
    assert token not in text, "the token file must not hold the token itself"
    assert hash_token(token) in text
    (grant,) = load_tokens(path)
    assert (grant.role, grant.agent_id) == ("agent", "alice")
    assert path.stat().st_mode & 0o077 == 0, "the token file should be readable by its owner only"
    again = run_callmon("hub", "token", "--role", "viewer", "--name", "floor-1", "--tokens", path)
    assert again.returncode == 0 and again.stdout.strip() != token
    assert [g.role for g in load_tokens(path)] == ["agent", "viewer"]


def test_every_new_token_can_follow_token_on_the_command_line(capsys):
    """A URL-safe token begins with "-" one time in 64, and argparse takes such a value for an option: `callmon floor
    --token -x...` stopped with "--token: expected one argument" (a floor test failed now and then for it)."""
    from monitor.cli import build_parser

    parser = build_parser()
    tokens = [new_token() for _ in range(2000)]
    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        try:
            assert parser.parse_args(["floor", "--token", token, "--no-tui"]).token == token
        except SystemExit:
            pytest.fail(f"callmon floor --token {token} is refused: {capsys.readouterr().err.strip()}", pytrace=False)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["hub"], "--tokens"),
        (["hub", "--tokens", "no-such-tokens.toml"], "does not exist"),
        (["hub", "token", "--role", "agent", "--tokens", "{tmp}/t.toml"], "--agent-id"),
        (["hub", "--tokens", "{tmp}/bad.toml"], "sha256"),
        (["hub", "--tokens", "{tmp}/strings.toml"], "expected only [[token]] tables"),
        (["hub", "--tokens", "{tmp}/table.toml"], "expected only [[token]] tables"),
        (["hub", "--tokens", "{tmp}/expiry.toml"], "expires must be a TOML date-time"),
        (["hub", "--tokens", "{tmp}/number.toml"], "sha256"),
        (["hub", "--tokens", "{tmp}/good.toml", "--redis", "http://redis:6379"], "--redis"),
    ],
    ids=["no-token-file", "missing-token-file", "agent-without-id", "bad-token-file", "token-strings", "token-table",
         "bad-expiry", "number-hash", "bad-redis-url"],
)
def test_hub_bad_input_is_one_line_and_exit_2(run_callmon, tmp_path, args, says):
    digest = "0" * 64
    (tmp_path / "bad.toml").write_text('[[token]]\nrole = "viewer"\nsha256 = "the token itself"\n')
    (tmp_path / "strings.toml").write_text('token = ["abc", "def"]\n')
    (tmp_path / "table.toml").write_text(f'[token]\nrole = "viewer"\nsha256 = "{digest}"\n')
    (tmp_path / "expiry.toml").write_text(f'[[token]]\nrole = "viewer"\nsha256 = "{digest}"\nexpires = "tomorrow"\n')
    (tmp_path / "number.toml").write_text('[[token]]\nrole = "viewer"\nsha256 = 12\n')
    (tmp_path / "good.toml").write_text(f'[[token]]\nrole = "viewer"\nsha256 = "{digest}"\n')
    result = run_callmon(*[a.replace("{tmp}", str(tmp_path)) for a in args], timeout=60)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("callmon: error:") and says in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_hub_on_a_port_in_use_says_so(run_callmon, floor):
    result = run_callmon("hub", "--tokens", floor.token_file, "--port", floor.hub.port, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("callmon: error: cannot listen on 127.0.0.1:")
    assert "--port" in result.stderr


# --- authentication ------------------------------------------------------------------------------


def _no_hello(url, tokens):
    with connect(url, open_timeout=WAIT_S) as ws:
        return closed_with(ws)


def _bad_token(url, tokens):
    with connect(url, open_timeout=WAIT_S) as ws:
        ws.send(json.dumps({"type": "hello", "token": tokens["alice"] + "x"}))
        return closed_with(ws)


def _not_a_hello(url, tokens):
    with connect(url, open_timeout=WAIT_S) as ws:
        send(ws, started("c-0000a001", "alice"))  # publishing before saying who it is
        return closed_with(ws)


def _viewer_publishing(url, tokens):
    with agent(url, tokens["viewer"]) as ws:
        json.loads(ws.recv(timeout=WAIT_S))  # the snapshot
        send(ws, started("c-0000a002", "alice"))
        return closed_with(ws)


def _agent_for_another_agent(url, tokens):
    with agent(url, tokens["alice"]) as ws:
        send(ws, started("c-0000a003", "bob"))
        return closed_with(ws)


def _agent_into_another_agents_call(url, tokens):
    with agent(url, tokens["bob"]) as bob:
        send(bob, started("c-0000a004", "bob"))
        with agent(url, tokens["alice"]) as alice:
            send(alice, metrics("c-0000a004", 1.0, 3))
            return closed_with(alice)


@pytest.mark.parametrize(
    "case",
    [_no_hello, _bad_token, _not_a_hello, _viewer_publishing, _agent_for_another_agent, _agent_into_another_agents_call],
    ids=lambda f: f.__name__.strip("_"),
)
def test_unauthorised_clients_are_closed_with_policy_violation(floor, case):
    hub, tokens = floor.hub, floor.tokens
    code, reason, got = case(hub.url, tokens)
    assert code == POLICY, (code, reason, got)
    assert reason, "the close frame should say why"
    if case in (_viewer_publishing, _agent_for_another_agent, _agent_into_another_agents_call):
        assert any(m.get("type") == "error" for m in got), f"expected an error message before the close, got {got}"
    assert hub.alive()


def test_authorised_clients_are_welcomed_and_nobody_else_changed_the_board(floor):
    hub, tokens = floor.hub, floor.tokens
    with agent(hub.url, tokens["alice"]) as ws:
        send(ws, started("c-0000a0a0", "alice"))
        viewer = FloorViewer(hub.url, tokens["viewer"])
        try:
            assert viewer.welcome == {"type": "welcome", "role": "viewer", "agent_id": None}
            viewer.wait("alice's call", lambda v: "c-0000a0a0" in v.calls)
            # the rejected attempts of the matrix left no call of theirs behind
            assert not {"c-0000a001", "c-0000a002", "c-0000a003"} & set(viewer.calls)
            assert viewer.calls["c-0000a0a0"]["agent_id"] == "alice"
        finally:
            viewer.close()
    with connect(hub.url, open_timeout=WAIT_S) as ws:
        ws.send(json.dumps({"type": "hello", "token": tokens["bob"]}))
        assert json.loads(ws.recv(timeout=WAIT_S)) == {"type": "welcome", "role": "agent", "agent_id": "bob"}


def test_a_token_added_while_the_hub_runs_works_at_once(floor):
    token = add_token(floor.token_file, "agent", agent_id="carol")
    viewer = FloorViewer(floor.url, floor.tokens["viewer"])
    try:
        with agent(floor.url, token) as ws:
            send(ws, started("c-0000ca01", "carol"))
            viewer.wait("carol's call, published with the new token", lambda v: "c-0000ca01" in v.calls)
    finally:
        viewer.close()


# --- bad clients: the hub stays up, others are unaffected -------------------------------------------


def test_malformed_and_invalid_messages_get_an_error_and_the_connection_stays(floor):
    hub, tokens = floor.hub, floor.tokens
    viewer = FloorViewer(hub.url, tokens["viewer"])
    try:
        with agent(hub.url, tokens["alice"]) as ws:
            bad = [
                "this is not json",
                json.dumps([1, 2, 3]),
                json.dumps({"schema": 1, "type": "metrics", "call_id": "c-0000b001", "t": "soon", "wall": 0}),
                json.dumps({"schema": 1, "type": "gossip", "call_id": "c-0000b001", "t": 1.0, "wall": 1.0}),
                json.dumps({"schema": 2, "type": "call.started"}),
                json.dumps(metrics("c-0000b0ff", 1.0, 2).to_dict()),  # a call never started
            ]
            for text in bad:
                ws.send(text)
                reply = json.loads(ws.recv(timeout=WAIT_S))
                assert reply["type"] == "error" and reply["message"], (text, reply)
            send(ws, started("c-0000b001", "alice"), metrics("c-0000b001", 2.0, 1))
            viewer.wait("the call published after the bad messages", lambda v: v.calls.get("c-0000b001", {}).get("heat") == 1)
    finally:
        viewer.close()
    assert hub.alive()


def test_an_oversized_message_closes_that_client_with_1009_and_the_hub_stays_up(floor):
    hub, tokens = floor.hub, floor.tokens
    with agent(hub.url, tokens["alice"]) as ws:
        send(ws, started("c-0000b101", "alice"))
        big = final("c-0000b101", 3.0, "customer", "blah " * 20000)  # ~100 KiB, over the 64 KiB limit
        send(ws, big)
        code, _, _ = closed_with(ws)
    assert code == TOO_BIG
    assert hub.alive()
    with agent(hub.url, tokens["alice"]) as ws:
        send(ws, started("c-0000b102", "alice"))


def test_a_flooding_client_is_closed_for_rate_limit_and_others_still_get_through(floor):
    hub, tokens = floor.hub, floor.tokens
    viewer = FloorViewer(hub.url, tokens["viewer"])
    outcome: dict = {}

    def flood():
        with agent(hub.url, tokens["bob"]) as ws:
            send(ws, started("c-0000f100", "bob"))
            try:
                for i in range(2000):
                    send(ws, metrics("c-0000f100", 1.0 + i / 100, i % 4))
            except ConnectionClosed:
                pass
            outcome["close"] = closed_with(ws)

    try:
        with agent(hub.url, tokens["alice"]) as ws:
            send(ws, started("c-0000f200", "alice"))
            flooder = threading.Thread(target=flood)
            flooder.start()
            for i in range(1, 40):
                send(ws, metrics("c-0000f200", i / 4, 0, hostility=i / 100))
                time.sleep(0.025)  # an ordinary publisher's pace
            flooder.join(WAIT_S)
            send(ws, metrics("c-0000f200", 11.0, 3, hostility=0.99))
            viewer.wait("alice's last metrics after the flood",
                        lambda v: v.calls.get("c-0000f200", {}).get("customer", {}).get("hostility") == 0.99)
        code, reason, _ = outcome["close"]
        assert (code, reason) == (POLICY, "rate limit")
    finally:
        viewer.close()
    assert hub.alive()


# --- the board: snapshot, deltas, stale, ended, removed -------------------------------------------


def test_a_new_viewer_gets_a_snapshot_then_only_what_changed(floor):
    hub, tokens = floor.hub, floor.tokens
    call = "c-0000d001"
    with agent(hub.url, tokens["alice"]) as ws:
        send(
            ws, started(call, "alice"), final(call, 4.0, "customer", "This is the third time I've called."),
            final(call, 6.0, "agent", "I'm sorry about that."), metrics(call, 6.5, 2, hostility=0.71),
            Nudge(call, 7.0, 7.0, "n1-acknowledge", "acknowledge", "warn", "Acknowledge how they feel", "vented",
                  {"quote": "third time"}),
        )
        first = FloorViewer(hub.url, tokens["viewer"])  # waits for the state above to be there
        first.wait("the nudge", lambda v: v.calls.get(call, {}).get("nudges"))
        first.close()

        viewer = FloorViewer(hub.url, tokens["viewer"])
        try:
            snap = next(c for c in viewer.snapshot["calls"] if c["call_id"] == call)
            assert snap["status"] == "live" and snap["agent_id"] == "alice" and snap["heat"] == 2
            assert snap["customer"] == {"loudness_db": 7.9, "pace_wpm": 188.0, "hostility": 0.71}
            assert snap["agent"] == {"pace_wpm": 150.0, "talk_ratio": 0.45}
            assert [n["kind"] for n in snap["nudges"]] == ["acknowledge"]
            assert [line["text"] for line in snap["transcript"]] == ["This is the third time I've called.",
                                                                    "I'm sorry about that."]
            assert snap["last_customer_line"] == "This is the third time I've called."
            assert isinstance(snap["started_at"], float) and snap["t"] == 7.0

            send(ws, NudgeCleared(call, 9.0, 9.0, "n1-acknowledge", "resolved", "acknowledge", True, 2.0))
            viewer.wait("the nudge cleared", lambda v: v.calls[call]["nudges"] == [])
            send(ws, SupervisorRequested(call, 10.0, 10.0, "customer wants a refund"))
            viewer.wait("the supervisor request", lambda v: v.calls[call]["supervisor_requests"])
            assert viewer.calls[call]["supervisor_requests"] == [{"t": 10.0, "note": "customer wants a refund"}]
            send(ws, final(call, 12.0, "customer", "Fine, put me through."))
            viewer.wait("the new line", lambda v: v.calls[call]["last_customer_line"] == "Fine, put me through.")
            mine = [u for u in viewer.updates if u["call_id"] == call]
            assert all("transcript" not in u["set"] for u in mine), "after the snapshot, lines come in `lines`"
            assert all(set(u["set"]) <= {"t", "nudges", "supervisor_requests", "last_customer_line"} for u in mine), mine
            assert [line["text"] for u in mine for line in u.get("lines", [])] == ["Fine, put me through."]

            send(ws, CallEnded(call, 13.0, 13.0, 13.0, 2, 1, 1, 0.45))
            viewer.wait("the call ended", lambda v: v.calls[call]["status"] == "ended")
        finally:
            viewer.close()


def test_a_viewer_of_a_hub_alone_resumes_from_its_position_or_gets_a_fresh_snapshot(tmp_path, start_hub):
    tokens = floor_token_file(tmp_path / "tokens.toml")
    hub = start_hub(tmp_path / "tokens.toml")
    call = "c-0000d101"
    with agent(hub.url, tokens["alice"]) as ws:
        send(ws, started(call, "alice"), final(call, 1.0, "customer", "before"))
        viewer = FloorViewer(hub.url, tokens["viewer"])
        viewer.wait("the first line", lambda v: v.calls.get(call, {}).get("transcript"))
        pos = viewer.pos
        viewer.close()
        for i in range(50):  # metrics and heartbeats in between move the position; the lines must all be there
            send(ws, metrics(call, 1.5 + i / 100, 1, hostility=0.2), json.dumps({"type": "heartbeat", "call_id": call}))
        send(ws, final(call, 2.0, "customer", "while away"), metrics(call, 2.5, 2, hostility=0.6))
        probe = FloorViewer(hub.url, tokens["viewer"])
        probe.wait("the metrics said while away", lambda v: v.calls.get(call, {}).get("heat") == 2)
        probe.close()
        back = FloorViewer(hub.url, tokens["viewer"], since=pos)
        try:
            assert back.snapshot["resumed"] is True
            mine = next(c for c in back.snapshot["calls"] if c["call_id"] == call)
            assert [line["text"] for line in mine["transcript"]] == ["while away"], "only what followed its position"
            assert mine["heat"] == 2
        finally:
            back.close()
        other_run = FloorViewer(hub.url, tokens["viewer"], since="1-1")  # a position from another run of the hub
        try:
            assert other_run.snapshot["resumed"] is False
            assert [line["text"] for line in other_run.calls[call]["transcript"]] == ["before", "while away"]
        finally:
            other_run.close()


def test_a_call_goes_stale_without_heartbeats_comes_back_with_one_and_leaves_after_it_ends(tmp_path, start_hub):
    tokens = floor_token_file(tmp_path / "tokens.toml")
    hub = start_hub(tmp_path / "tokens.toml", "--stale-s", "1", "--remove-after-s", "1")
    try:
        viewer = FloorViewer(hub.url, tokens["viewer"])
        call = "c-0000e001"
        with agent(hub.url, tokens["alice"]) as ws:
            send(ws, started(call, "alice"))
            viewer.wait("the call live", lambda v: v.calls.get(call, {}).get("status") == "live")
            viewer.wait("the call stale once nothing came", lambda v: v.calls[call]["status"] == "stale")
            ws.send(json.dumps({"type": "heartbeat", "call_id": call}))
            viewer.wait("the call live again after a heartbeat", lambda v: v.calls[call]["status"] == "live")
            send(ws, CallEnded(call, 20.0, 20.0, 20.0, 0, 0, 0, 0.5))
            viewer.wait("the call ended", lambda v: v.calls[call]["status"] == "ended")
            viewer.wait("the ended call removed", lambda v: call not in v.calls)
        statuses = [u["set"]["status"] for u in viewer.updates if u["type"] == "update" and "status" in u["set"]]
        assert statuses == ["live", "stale", "live", "ended"]
        assert viewer.updates[-1] == {"type": "removed", "call_id": call}
        viewer.close()
    finally:
        hub.stop()


# --- the wallboard's files ------------------------------------------------------------------------


def _get(port: int, path: str) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


def test_plain_http_serves_the_wallboard_files_and_nothing_else(floor):
    hub = floor.hub
    web = REPO_ROOT / "monitor" / "floor" / "web"
    for name in ("index.html", "wallboard.js", "wallboard.css"):
        if not (web / name).is_file():
            continue
        status, ctype, body = _get(hub.port, "/" if name == "index.html" else f"/{name}")
        assert status == 200 and body == (web / name).read_bytes(), name
        assert ctype.split(";")[0] in ("text/html", "text/javascript", "application/javascript", "text/css"), ctype
    for path in ("/nothing.js", "/../hub.py", "/%2e%2e/hub.py", "/..%2fhub.py", "/.hidden", "/web/../hub.py"):
        status, _, _ = _get(hub.port, path)
        assert status == 404, path
    assert hub.alive()


# --- TLS ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is needed to make a test certificate")
def test_tls_with_a_self_signed_certificate(tmp_path, start_hub):
    cert, key = tmp_path / "hub.pem", tmp_path / "hub.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )
    tokens = floor_token_file(tmp_path / "tokens.toml")
    hub = start_hub(tmp_path / "tokens.toml", "--cert", str(cert), "--key", str(key))
    try:
        assert hub.url.startswith("wss://")
        trust = ssl.create_default_context(cafile=str(cert))
        viewer = FloorViewer(hub.url, tokens["viewer"], trust)
        with agent(hub.url, tokens["alice"], trust) as ws:
            send(ws, started("c-0000c001", "alice"), final("c-0000c001", 2.0, "customer", "Hello there."))
            viewer.wait("the call over TLS", lambda v: v.calls.get("c-0000c001", {}).get("last_customer_line") == "Hello there.")
        viewer.close()
        with pytest.raises(ssl.SSLCertVerificationError), connect(hub.url, open_timeout=WAIT_S):
            pass  # a client that does not trust the certificate is refused
    finally:
        hub.stop()


# --- the board's bookkeeping, without sockets ----------------------------------------------------------


def test_one_agent_cannot_fill_the_board_but_its_ended_calls_make_room():
    from monitor.floor.state import MAX_CALLS_PER_AGENT, FloorState, Removed

    state = FloorState()
    for i in range(MAX_CALLS_PER_AGENT):
        assert state.make_room("alice", MAX_CALLS_PER_AGENT) == []
        state.apply(started(f"c-{i:08x}", "alice"), now=100.0 + i)
    assert state.make_room("alice", MAX_CALLS_PER_AGENT) is None, "all live: no room for a 17th call"
    assert state.make_room("bob", MAX_CALLS_PER_AGENT) == [], "another agent is not affected"
    state.apply(CallEnded("c-00000003", 9.0, 9.0, 9.0, 1, 0, 0, 0.5), now=200.0)
    state.apply(CallEnded("c-00000001", 9.0, 9.0, 9.0, 1, 0, 0, 0.5), now=201.0)
    assert state.make_room("alice", MAX_CALLS_PER_AGENT) == [Removed("c-00000003")], "the call that ended first goes"
    assert "c-00000003" not in state.calls and "c-00000001" in state.calls


def test_updates_inside_a_viewers_window_merge_into_one():
    from monitor.floor.state import FloorState

    state = FloorState()
    call = "c-0000aa01"
    (first,) = state.apply(started(call, "alice"), now=1.0)
    (a,) = state.apply(final(call, 2.0, "customer", "One."), now=1.1)
    (b,) = state.apply(metrics(call, 2.5, 3), now=1.2)
    (c,) = state.apply(final(call, 3.0, "customer", "Two."), now=1.3)
    merged = a.merged(b).merged(c)
    assert [line["text"] for line in merged.lines] == ["One.", "Two."]
    assert merged.set["heat"] == 3 and merged.set["last_customer_line"] == "Two." and merged.set["t"] == 3.0
    whole = first.merged(merged)
    assert whole.set["transcript"] == [] and whole.set["agent_id"] == "alice", "a new call's first update keeps every field"


# --- attacks: each found by trying it; against a real hub on a real redis-server --------------------------


def _strict(text: str):
    """JSON as a browser's JSON.parse reads it: NaN and Infinity are errors."""
    def refuse(name):
        raise ValueError(f"{name} in the hub's output")

    return json.loads(text, parse_constant=refuse)


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ('{"schema":1,"type":"metrics","call_id":"c-0000a901","t":Infinity,"wall":0,"roles":{},"overlap":false,'
         '"silence_s":0}', "Infinity"),
        ('{"schema":1,"type":"metrics","call_id":"c-0000a901","t":5,"wall":5,"roles":{"customer":{"hostility":NaN}},'
         '"overlap":false,"silence_s":0}', "NaN"),
        ('{"schema":1,"type":"metrics","call_id":"c-0000a901","t":1e308,"wall":0,"roles":{},"overlap":false,'
         '"silence_s":0}', "t must be from"),
        ('{"schema":1,"type":"metrics","call_id":"c-0000a901","t":"12","wall":0,"roles":{},"overlap":false,'
         '"silence_s":0}', "t must be a number"),
        ('{"schema":1,"type":"metrics","call_id":"c-0000a901","t":5,"wall":5,"roles":{},"overlap":false,'
         '"silence_s":0,"heat":7}', "heat"),
        ('{"schema":1,"type":"transcript.final","call_id":"c-0000a901","t":5,"wall":5,"role":"customer",'
         '"text":{"html":"<b>"},"start":4,"end":5,"words":[]}', "text must be text"),
        ('{"schema":1,"type":"nudge","call_id":"c-0000a901","t":5,"wall":5,"id":"n9","kind":"<img src=x onerror=alert(1)>",'
         '"severity":"critical","message":"m","reason":"r","evidence":{}}', "kind"),
        ('{"schema":1,"type":"nudge","call_id":"c-0000a901","t":5,"wall":5,"id":"n9","kind":"acknowledge",'
         '"severity":"urgent","message":"m","reason":"r","evidence":{}}', "severity"),
        ('{"schema":1,"type":"nudge","call_id":"c-0000a901","t":5,"wall":5,"id":"n9","kind":"acknowledge",'
         '"severity":"warn","message":"m","reason":"r","evidence":' + _nested(40) + "}", "nested deeper"),
        ('{"schema":1,"type":"supervisor.requested","call_id":"c-0000a901","t":5,"wall":5,"note":["a"]}', "note"),
        ('{"schema":1,"type":"nudge","call_id":"c-0000a901","t":5,"wall":5,"id":"n9","kind":"acknowledge",'
         '"severity":"warn","message":"m","reason":"r","evidence":{"x":[1e400]}}', "evidence holds a number"),
    ],
    ids=["t-infinity", "hostility-nan", "t-huge", "t-string", "heat-7", "text-object", "kind-markup", "severity",
         "evidence-deep", "note-list", "evidence-overflow"],
)
def test_a_field_of_the_wrong_type_or_range_is_refused_and_every_viewer_still_gets_valid_json(floor, bad, says):
    call = "c-0000a901"
    with agent(floor.url, floor.tokens["alice"]) as ws:
        send(ws, started(call, "alice"), metrics(call, 2.0, 1, hostility=0.3))
        ws.send(bad)
        reply = json.loads(ws.recv(timeout=WAIT_S))
        assert reply["type"] == "error" and says in reply["message"], reply
        send(ws, final(call, 3.0, "customer", "still here"))  # the link stays open
        viewer = FloorViewer(floor.url, floor.tokens["viewer"])
        try:
            viewer.wait("the line after the bad message", lambda v: v.calls.get(call, {}).get("last_customer_line"))
            with connect(floor.url, open_timeout=WAIT_S, max_size=None) as fresh:  # read as a browser would
                fresh.send(json.dumps({"type": "hello", "token": floor.tokens["viewer"]}))
                fresh.recv(timeout=WAIT_S)
                board = _strict(fresh.recv(timeout=WAIT_S))
            mine = next(c for c in board["calls"] if c["call_id"] == call)
            assert (mine["heat"], mine["customer"]["hostility"]) == (1, 0.3), "nothing of the bad message got in"
            assert "<img" not in json.dumps(board) and "urgent" not in json.dumps(board)
        finally:
            viewer.close()
    assert "Traceback" not in floor.hub.output()


def test_deeply_nested_json_is_malformed_before_and_after_the_hello_without_a_traceback(floor):
    deep = "[" * 30000 + "]" * 30000  # under the 64 KiB frame limit, far past any parser's recursion limit
    with connect(floor.url, open_timeout=WAIT_S) as ws:  # not authenticated yet
        ws.send(deep)
        code, reason, _ = closed_with(ws)
        assert code == POLICY and "hello" in reason
    with agent(floor.url, floor.tokens["bob"]) as ws:
        answers = []
        with contextlib.suppress(ConnectionClosed):
            for _ in range(30):
                ws.send(deep)
                answers.append(json.loads(ws.recv(timeout=WAIT_S)))
        code, reason, _ = closed_with(ws)
        assert answers and all(a == {"type": "error", "message": "nested too deeply"} for a in answers), answers[:3]
        assert (code, reason) == (POLICY, "too many bad messages") and len(answers) < 30
    viewer = FloorViewer(floor.url, floor.tokens["viewer"])
    try:
        viewer.send({"type": "whisper", "call_id": "c-0000a901", "text": deep[:100]})
        viewer.ws.send(deep)
        viewer.wait("the hub's answer to the viewer", lambda v: "nested too deeply" in v.errors)
    finally:
        viewer.close()
    assert floor.hub.alive()
    assert "Traceback" not in floor.hub.output() and "RecursionError" not in floor.hub.output()


def _stalled_viewer(port: int, token: str):
    """A viewer that says hello and then never reads: the socket's receive buffer is tiny and stays full."""
    import base64
    import os
    import socket
    import struct

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    payload = json.dumps({"type": "hello", "token": token}).encode()
    mask = os.urandom(4)
    frame = bytes([0x81, 0x80 | 126]) + struct.pack("!H", len(payload)) + mask
    sock.sendall(frame + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    return sock


def test_viewers_that_stop_reading_their_snapshot_are_dropped_and_one_agent_token_fills_a_bounded_board(
        tmp_path, redis_server, start_hub):
    from monitor.floor.state import MAX_CALL_BYTES, MAX_CALLS_PER_AGENT
    from monitor.floor.tokens import add_token

    path = tmp_path / "tokens.toml"
    agents = {f"agent{i}": add_token(path, "agent", agent_id=f"agent{i}") for i in range(8)}
    viewer_token = add_token(path, "viewer", name="lead")
    hub = start_hub(path, "--redis", redis_server.url[:-1] + "3")
    line = "\N{POUTING FACE}" * 500  # the longest line the hub keeps, 4 bytes a character

    def fill(name: str, token: str) -> dict:
        with agent(hub.url, token) as ws:
            for c in range(MAX_CALLS_PER_AGENT):
                call = f"c-{name}-{c:02d}"
                send(ws, started(call, name))
                for i in range(21):
                    send(ws, final(call, 2.0 + i, "customer", line))
                    time.sleep(0.02)  # the hub's rate limit is 50 a second
            send(ws, started(f"c-{name}-extra", name))
            return json.loads(ws.recv(timeout=WAIT_S))

    threads, refusals = [], {}
    for name, token in agents.items():
        thread = threading.Thread(target=lambda n=name, t=token: refusals.__setitem__(n, fill(n, t)))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(120)
    assert all("has 16 calls that have not ended" in r["message"] for r in refusals.values()), refusals

    viewer = FloorViewer(hub.url, viewer_token)
    viewer.wait("every agent's board", lambda v: sum(len(c["transcript"]) for c in v.calls.values()) >= 8 * 16 * 20)
    viewer.close()
    with connect(hub.url, open_timeout=WAIT_S, max_size=None) as ws:
        ws.send(json.dumps({"type": "hello", "token": viewer_token}))
        ws.recv(timeout=WAIT_S)
        size = len(ws.recv(timeout=WAIT_S).encode())
    assert size <= len(agents) * MAX_CALLS_PER_AGENT * MAX_CALL_BYTES, size
    assert size > 4_500_000, "the board must outgrow the kernel's socket buffers for the stall to be real"

    stalled = [_stalled_viewer(hub.port, viewer_token) for _ in range(2)]
    end = time.monotonic() + 60
    while hub.output().count("stopped reading; dropped") < 2:
        assert time.monotonic() < end, f"the stalled viewers were not dropped:\n{hub.output()[-2000:]}"
        time.sleep(0.2)
    for sock in stalled:
        with pytest.raises(OSError):  # reset by the hub; what was buffered is gone
            while sock.recv(65536):
                pass
        sock.close()
    after = FloorViewer(hub.url, viewer_token)  # the hub serves on
    assert len(after.calls) == 8 * 16
    after.close()
    assert "Traceback" not in hub.output()


def test_revoked_and_expired_tokens_close_the_links_open_with_them(tmp_path, redis_server, start_hub):
    import os
    import signal
    from datetime import UTC, datetime, timedelta

    from monitor.floor.tokens import add_token

    path = tmp_path / "tokens.toml"
    tokens = floor_token_file(path)
    hub = start_hub(path, "--redis", redis_server.url[:-1] + "4")
    viewer = FloorViewer(hub.url, tokens["viewer"])
    with agent(hub.url, tokens["alice"]) as alice, agent(hub.url, tokens["bob"]) as bob:
        send(alice, started("c-0000e101", "alice"))
        send(bob, started("c-0000e102", "bob"))
        viewer.wait("both calls", lambda v: {"c-0000e101", "c-0000e102"} <= set(v.calls))
        # revoke alice: her entry leaves the file (the hub sees the change on its own)
        text = path.read_text()
        entries = text.split("[[token]]")
        path.write_text("[[token]]".join(e for e in entries if 'agent_id = "alice"' not in e))
        code, reason, _ = closed_with(alice)
        assert (code, reason) == (POLICY, "token revoked")
        send(bob, final("c-0000e102", 2.0, "customer", "bob is still on"))
        viewer.wait("bob's line", lambda v: v.calls["c-0000e102"]["last_customer_line"] == "bob is still on")

        # revoke the viewer by SIGHUP: a same-size edit with the old timestamp, which only a reload finds
        stat = path.stat()
        swapped = path.read_text().replace(hash_token(tokens["viewer"]), hash_token("x" * 43))
        path.write_text(swapped)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        hub.signal(signal.SIGHUP)
        code, reason, _ = closed_with(viewer.ws)
        assert (code, reason) == (POLICY, "token revoked")
        viewer.close()

    expires = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    carol = add_token(path, "agent", agent_id="carol")
    path.write_text(path.read_text().rstrip() + f"\nexpires = {expires.isoformat().replace('+00:00', 'Z')}\n")
    with agent(hub.url, carol) as ws:
        send(ws, started("c-0000e103", "carol"))
        code, reason, _ = closed_with(ws)
        assert (code, reason) == (POLICY, "token expired")
    with connect(hub.url, open_timeout=WAIT_S) as ws:
        ws.send(json.dumps({"type": "hello", "token": carol}))
        code, _, _ = closed_with(ws)
        assert code == POLICY, "an expired token does not open the hub again"
    assert "Traceback" not in hub.output()
