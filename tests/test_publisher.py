"""The agent's publisher: the call goes to the hub redacted, survives a hub that is late, restarts or is
down, and the agent's coaching is the same either way.

Real `callmon hub` subprocesses on loopback, a real viewer client, and (for the replays) the real
pipeline with the bundled Whisper model. The `HubPublisher` is fed real event objects where the test
is about the link rather than the audio.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO_ROOT, floor_token_file, free_port
from conftest import FLOOR_WAIT_S as WAIT_S
from conftest import FloorViewer as Viewer
from conftest import call_final as final
from conftest import call_metrics as metrics
from conftest import call_started as started

from monitor.errors import BadInput
from monitor.events import CallEnded, Nudge, SupervisorRequested
from monitor.floor.client import alerts
from monitor.floor.publisher import HubPublisher
from monitor.redact import redact_text

CARD_CALL = FIXTURES / "calls" / "scn_ack_double_charge.flac"  # the customer reads out an account number


@pytest.fixture
def tokens(tmp_path):
    path = tmp_path / "tokens.toml"
    return path, floor_token_file(path)


def wait_until(predicate, what: str) -> None:
    import time

    end = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < end, f"never happened: {what}"
        time.sleep(0.05)


def wait_link(publisher: HubPublisher, prefix: str) -> None:
    import time

    end = time.monotonic() + WAIT_S
    while not publisher.link.startswith(prefix):
        assert time.monotonic() < end, f"link stayed {publisher.link!r}, expected {prefix}..."
        time.sleep(0.05)


# --- construction and a hub that is down -------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://floor:8765", "floor:8765", "ws://", "ws://floor:port"])
def test_a_url_that_is_not_a_websocket_url_is_bad_input(url):
    with pytest.raises(BadInput, match="ws://"):
        HubPublisher(url, "token", "alice")


def test_replay_with_a_bad_hub_url_is_one_line_and_exit_2(run_callmon):
    result = run_callmon("replay", FIXTURES / "calls" / "short.flac", "--hub", "http://floor:8765", "--token", "t")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().startswith("callmon: error: --hub 'http://floor:8765' is not a hub address")
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def test_with_the_hub_down_the_queue_stays_bounded_and_only_old_metrics_go(tokens):
    publisher = HubPublisher(f"ws://127.0.0.1:{free_port()}", "token", "alice", buffer=50)
    try:
        publisher(started("c-00001001", "alice"))
        for i in range(200):
            publisher(metrics("c-00001001", i * 0.1, i % 4))
        for i in range(100):
            publisher(final("c-00001001", 30.0 + i, "customer", f"line {i}"))
        publisher(CallEnded("c-00001001", 200.0, 200.0, 200.0, 3, 0, 0, 0.5))
        wait_link(publisher, "down: connection refused, retrying in ")
        queued = [json.loads(text) for _, text in publisher._queue]
        assert len(queued) <= 50
        assert queued[0]["type"] == "call.started" and queued[-1]["type"] == "call.ended", "never dropped"
        assert sum(q["type"] == "metrics" for q in queued) <= 1, "only the newest metrics waits for the hub"
        assert [q["text"] for q in queued if q["type"] == "transcript.final"][-1] == "line 99", "the newest lines kept"
        assert publisher.dropped > 0
    finally:
        publisher.close(timeout=1.0)


def test_an_event_it_cannot_send_is_said_once_and_the_call_goes_on(caplog):
    # A numpy scalar in a nudge's evidence (a producer that forgot to convert one) cannot go as JSON.
    import numpy as np

    publisher = HubPublisher(f"ws://127.0.0.1:{free_port()}", "token", "alice")
    try:
        publisher(started("c-00001002", "alice"))
        for i in range(3):
            publisher(Nudge("c-00001002", 5.0 + i, 5.0 + i, f"n{i}", "slow_down", "warn", "Slow down.", "fast",
                            {"wpm": np.float32(250.0)}))
        publisher(final("c-00001002", 9.0, "customer", "still here"))
        said = [r for r in caplog.records if r.levelname == "WARNING" and "could not send a nudge event" in r.getMessage()]
        assert len(said) == 1, [r.getMessage() for r in caplog.records]
        queued = [json.loads(text)["type"] for _, text in publisher._queue]
        assert queued == ["call.started", "transcript.final"], "the events it can send still go"
    finally:
        publisher.close(timeout=1.0)


def test_a_token_the_hub_rejects_is_one_warning_and_no_retries(start_hub, tokens, capfd):
    path, _ = tokens
    hub = start_hub(path)
    try:
        publisher = HubPublisher(hub.url, "not-a-token", "alice")
        publisher(started("c-00002001", "alice"))
        wait_link(publisher, "down: hub rejected the token")
        assert "not retrying" in publisher.link
        publisher(final("c-00002001", 2.0, "customer", "still taking events"))  # the call goes on
        publisher.close()
        err = capfd.readouterr().err
        warnings = [line for line in err.splitlines() if line.startswith("callmon: warning: hub rejected the token")]
        assert len(warnings) == 1, err
    finally:
        hub.stop()


@pytest.mark.parametrize(
    ("where", "says"),
    [("refused", "connection refused"), ("unknown-host", "unknown host"), ("tls-to-plain", "does not speak TLS")],
)
def test_a_hub_it_cannot_reach_is_one_warning_line_and_the_call_goes_on(start_hub, tokens, capfd, where, says):
    path, tok = tokens
    url = {
        "refused": f"ws://127.0.0.1:{free_port()}",
        "unknown-host": "ws://no-such-hub.invalid:8765",
        "tls-to-plain": start_hub(path).url.replace("ws://", "wss://") if where == "tls-to-plain" else "",
    }[where]
    publisher = HubPublisher(url, tok["alice"], "alice")
    try:
        publisher(started("c-00002101", "alice"))
        wait_link(publisher, "down: ")
        assert says in publisher.link, publisher.link
        publisher(final("c-00002101", 2.0, "customer", "the call goes on"))
        wait_link(publisher, "down: ")  # still retrying, still no second line
    finally:
        publisher.close(timeout=1.0)
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("callmon: warning: cannot reach the hub at ") and says in lines[0], err


# --- redaction -------------------------------------------------------------------------------------


def test_card_and_phone_numbers_reach_the_hub_masked(start_hub, tokens):
    path, tok = tokens
    hub = start_hub(path)
    try:
        viewer = Viewer(hub.url, tok["viewer"])
        publisher = HubPublisher(hub.url, tok["alice"], "alice")
        call = "c-00003001"
        publisher(started(call, "alice"))
        publisher(final(call, 3.0, "customer", "my card is 4111 1111 1111 1111"))
        publisher(Nudge(call, 4.0, 4.0, "n1-call_supervisor", "call_supervisor", "warn",
                        "Offer a supervisor", 'They said "call me on 07700 900123"', {"quote": "call me on 07700 900123"}))
        publisher(final(call, 5.0, "customer", "or ring 07700 900123"))
        publisher.close()
        viewer.wait("the last line", lambda v: len(v.calls.get(call, {}).get("transcript", [])) == 2)
        board = json.dumps(viewer.calls[call]) + json.dumps(viewer.updates)
        assert "4111" not in board and "900123" not in board, board
        assert [line["text"] for line in viewer.calls[call]["transcript"]] == ["my card is [card]", "or ring [phone]"]
        assert viewer.calls[call]["last_customer_line"] == "or ring [phone]"
        viewer.close()
    finally:
        hub.stop()


# --- reconnecting -----------------------------------------------------------------------------------


def test_a_hub_started_after_the_call_began_receives_the_call(start_hub, tokens):
    path, tok = tokens
    port = free_port()
    publisher = HubPublisher(f"ws://127.0.0.1:{port}", tok["alice"], "alice")
    call = "c-00004001"
    publisher(started(call, "alice"))
    publisher(final(call, 2.0, "customer", "Hello, is anyone there?"))
    wait_link(publisher, "down: ")
    hub = start_hub(path, port=port)
    try:
        viewer = Viewer(hub.url, tok["viewer"])
        viewer.wait("the call begun before the hub", lambda v: v.calls.get(call, {}).get("last_customer_line"))
        assert viewer.calls[call]["agent_id"] == "alice"
        publisher(final(call, 4.0, "agent", "Yes, I'm here."))
        publisher(CallEnded(call, 5.0, 5.0, 5.0, 0, 0, 0, 0.5))
        publisher.close()
        viewer.wait("the call ended", lambda v: v.calls[call]["status"] == "ended")
        assert [line["text"] for line in viewer.calls[call]["transcript"]] == ["Hello, is anyone there?", "Yes, I'm here."]
        viewer.close()
    finally:
        hub.stop()


def test_a_hub_restarted_mid_call_loses_nothing_and_gets_the_rest_of_the_call(start_hub, tokens):
    """No --redis: the hub alone forgets everything when it stops; the publisher sends its call's state again."""
    path, tok = tokens
    hub = start_hub(path)
    port = hub.port
    call = "c-00005001"
    publisher = HubPublisher(hub.url, tok["alice"], "alice")
    try:
        viewer = Viewer(hub.url, tok["viewer"])
        publisher(started(call, "alice"))
        publisher(final(call, 2.0, "customer", "First line."))
        publisher(SupervisorRequested(call, 2.5, 2.5, "refund over my limit"))
        publisher(Nudge(call, 3.0, 3.0, "n1-call_supervisor", "call_supervisor", "critical", "Bring in your supervisor",
                        "asked for a manager"))
        viewer.wait("the nudge", lambda v: v.calls.get(call, {}).get("nudges"))
        viewer.send({"type": "ack", "call_id": call})
        wait_until(lambda: publisher.lead_note, "the acknowledgement reaching the agent")
        viewer.close()
        hub.stop()
        wait_link(publisher, "down: ")
        publisher(final(call, 4.0, "customer", "Said while the hub was down."))
        publisher(metrics(call, 4.5, 3, hostility=0.9))
        hub = start_hub(path, port=port)
        viewer = Viewer(hub.url, tok["viewer"])
        viewer.wait("the call again after the restart", lambda v: v.calls.get(call, {}).get("heat") == 3)
        publisher(final(call, 6.0, "customer", "Said after the restart."))
        publisher(CallEnded(call, 7.0, 7.0, 7.0, 3, 0, 0, 0.5))
        publisher.close()
        viewer.wait("the call ended", lambda v: v.calls[call]["status"] == "ended")
        texts = [line["text"] for line in viewer.calls[call]["transcript"]]
        assert texts == ["First line.", "Said while the hub was down.", "Said after the restart."], texts
        assert viewer.calls[call]["supervisor_requests"] == [{"t": 2.5, "note": "refund over my limit"}]
        assert [n["kind"] for n in viewer.calls[call]["nudges"]] == ["call_supervisor"]
        ack = viewer.calls[call]["ack"]
        assert (ack["by"], ack["requests"], ack["nudges"]) == ("lead", 1, ["n1-call_supervisor"]), "the ack survived"
        assert alerts(viewer.calls) == [], "what the lead acknowledged before the restart does not alert again"
        assert viewer.calls[call]["agent_id"] == "alice"
        viewer.close()
    finally:
        publisher.close(timeout=1.0)


# --- whole calls: the coaching is the same with the hub up, down or absent -----------------------------


class Replay:
    """`callmon replay --format jsonl` of the card call in the background. Its output goes to files: a pipe
    nobody reads while the test watches the viewer would fill up and stall the call."""

    def __init__(self, out_dir: Path, name: str, *extra: str) -> None:
        self.out, self.err = out_dir / f"{name}.jsonl", out_dir / f"{name}.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "replay", str(CARD_CALL), "--format", "jsonl", "-q", *extra],
                cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            )

    def finish(self) -> tuple[int, list[dict], str]:
        """(exit code, events, stderr) once the replay is over."""
        code = self.proc.wait(timeout=300)
        events = [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]
        return code, events, self.err.read_text()


def _nudges(events: list[dict]) -> list[tuple]:
    return [(e["id"], e["kind"], e["t"]) for e in events if e["type"] == "nudge"]


@pytest.mark.slow
def test_a_replay_publishes_its_call_redacted_and_coaches_the_same_with_the_hub_up_down_or_absent(start_hub, tokens, tmp_path):
    path, tok = tokens
    config = tmp_path / "alice.toml"
    config.write_text('[call]\nagent_id = "alice"\n')
    hub = start_hub(path)
    try:
        viewer = Viewer(hub.url, tok["viewer"])
        up = Replay(tmp_path, "up", "--config", str(config), "--hub", hub.url, "--token", tok["alice"])
        viewer.wait("the replayed call end", lambda v: any(c.get("status") == "ended" for c in v.calls.values()),
                    timeout=300)
        code, events, err = up.finish()
        assert code == 0, err
        call = events[0]["call_id"]
        assert viewer.calls[call]["agent_id"] == "alice"
        raised = {e["kind"] for e in events if e["type"] == "nudge"}
        assert raised and {n["kind"] for n in viewer.calls[call]["nudge_log"]} == raised
        finals = [e["text"] for e in events if e["type"] == "transcript.final"]
        seen = [line["text"] for line in viewer.calls[call]["transcript"]]
        assert seen == [redact_text(text) for text in finals], "every final, in order, redacted"
        assert any("[digits]" in text for text in seen), f"the account number read out was not masked: {seen}"
        assert not any(any(ch.isdigit() for ch in text) for text in seen if "[digits]" in text)
        viewer.close()
    finally:
        hub.stop()

    down = Replay(tmp_path, "down", "--hub", f"ws://127.0.0.1:{free_port()}", "--token", "whatever")
    down_code, down_events, down_err = down.finish()
    absent_code, absent_events, absent_err = Replay(tmp_path, "absent").finish()
    assert down_code == 0 and absent_code == 0, down_err + absent_err
    assert "Traceback" not in down_err
    assert _nudges(down_events) == _nudges(absent_events) == _nudges(events)
