"""Shared paths and helpers for the callmon tests."""

import contextlib
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def callmon(*args, timeout=300):
    """Run `python -m monitor ARGS` as a user would; returns the CompletedProcess (text mode)."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="session")
def run_callmon():
    """The `callmon` runner: `run_callmon("replay", path, "--format", "jsonl", timeout=300)`."""
    return callmon


class Replays:
    """`callmon replay FILE PACE --format jsonl -q` once per (file, pace), the events kept for every test.

    `pace` is the replay's pacing flags, e.g. ("--fast",) or ("--speed", "4"). `prefetch` runs several
    replays at once: paced ones mostly wait on the clock, and nothing they decide may depend on load.
    """

    TIMEOUT_S = 300

    def __init__(self):
        self._runs = {}

    def prefetch(self, flacs, pace=("--fast",), jobs=3):
        todo = [f for f in flacs if (f, pace) not in self._runs]
        with ThreadPoolExecutor(jobs) as pool:
            for flac, run in zip(todo, pool.map(lambda f: self._replay(f, pace), todo), strict=True):
                self._runs[flac, pace] = run

    def events(self, flac, pace=("--fast",)):
        if (flac, pace) not in self._runs:
            self._runs[flac, pace] = self._replay(flac, pace)
        events, error = self._runs[flac, pace]
        if error:
            pytest.fail(error, pytrace=False)
        return events

    def nudges(self, flac, pace=("--fast",)):
        return [e for e in self.events(flac, pace) if e.get("type") == "nudge"]

    def _replay(self, flac, pace):
        result = callmon("replay", flac, *pace, "--format", "jsonl", "-q", timeout=self.TIMEOUT_S)
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-15:])
            return None, f"callmon replay {flac.name} {' '.join(pace)} exited with {result.returncode}:\n{tail}"
        events = []
        for n, line in enumerate(result.stdout.splitlines(), 1):
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError as exc:
                return None, f"callmon replay {flac.name}: stdout line {n} is not JSON ({exc.msg}): {line[:200]!r}"
        return events, None


@pytest.fixture(scope="session")
def replays():
    """Whole-call replays shared by the scenario and speed-invariance tests (each call replayed once per pace)."""
    return Replays()


@pytest.fixture
def shared_data():
    """The evaluation data next to the repository, or a skip when it is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent (evaluation data lives outside the repository)")
    return SHARED_DATA


# --- the floor: one real hub (and a real redis-server) for every floor test ----------------------------

FLOOR_WAIT_S = 30.0  # how long floor tests look for something before calling it missing (not a speed limit)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """Debian's redis-server on a free loopback port, in its own directory, without persistence."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        import shutil

        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not installed; run scripts/setup (it installs Debian's redis-server)")
        self.port = port or free_port()
        self.workdir = workdir
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir), "--loglevel", "warning"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        import time

        end = time.monotonic() + FLOOR_WAIT_S
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > end:
                    raise AssertionError("redis-server did not start") from None
                time.sleep(0.05)
        client.close()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(FLOOR_WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class HubProcess:
    """A real `callmon hub` subprocess on loopback; its port is read from the line it prints when listening.
    Its stderr goes to `log` (read it with `.output()`)."""

    def __init__(self, token_file: Path, log: Path, *extra: str, port: int = 0) -> None:
        import re
        import time

        self.token_file = Path(token_file)
        self.log = log
        self.args = [sys.executable, "-m", "monitor", "hub", "--tokens", str(token_file), "--port", str(port), *extra]
        with open(log, "w") as err:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(self.args, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err)
        end = time.monotonic() + FLOOR_WAIT_S * 2
        while True:
            found = re.search(r"listening on (wss?)://[^ ]+:(\d+)/ws", self.output())
            if found:
                self.scheme, self.port = found.group(1), int(found.group(2))
                break
            if self.proc.poll() is not None or time.monotonic() > end:
                self.stop()
                raise AssertionError(f"callmon hub did not start:\n{self.output()}")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/ws"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """kill -9: no goodbye to anyone."""
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> int:
        if self.alive():
            self.proc.terminate()
        try:
            return self.proc.wait(FLOOR_WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def floor_token_file(path: Path) -> dict[str, str]:
    """A token file with agents alice and bob and a viewer named lead, made as a user would; name -> token."""
    from monitor.floor.tokens import add_token

    return {
        "alice": add_token(path, "agent", agent_id="alice"),
        "bob": add_token(path, "agent", agent_id="bob"),
        "viewer": add_token(path, "viewer", name="lead"),
    }


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """A real redis-server for the module, on a free loopback port; stopped after."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def start_hub(tmp_path):
    """Start real hubs: `start_hub(token_file, *args)`; every hub started is stopped after the test."""
    hubs: list[HubProcess] = []
    count = iter(range(1000))

    def start(token_file: Path, *extra: str, port: int = 0) -> HubProcess:
        hub = HubProcess(token_file, tmp_path / f"hub-{next(count)}.log", *extra, port=port)
        hubs.append(hub)
        return hub

    yield start
    for hub in hubs:
        hub.stop()


class FloorViewer:
    """A team lead's view reduced to the protocol, kept by the dashboards' own `client.apply`: a snapshot, then
    every batch; `updates` lists each update/removed received, in order."""

    def __init__(self, url: str, token: str, ssl_context=None, since: str | None = None) -> None:
        import contextlib
        import json

        from websockets.sync.client import connect

        from monitor.floor.client import apply

        self._apply = apply
        self._json = json
        self._stack = contextlib.ExitStack()
        kwargs = {"ssl": ssl_context} if ssl_context else {}
        self.ws = self._stack.enter_context(connect(url, max_size=None, open_timeout=FLOOR_WAIT_S, **kwargs))
        hello = {"type": "hello", "token": token} | ({"since": since} if since else {})
        self.ws.send(json.dumps(hello))
        self.welcome = json.loads(self.ws.recv(timeout=FLOOR_WAIT_S))
        first = json.loads(self.ws.recv(timeout=FLOOR_WAIT_S))
        assert first["type"] == "snapshot", first
        self.snapshot = first
        self.pos = first.get("pos")
        self.calls: dict = {}
        self.updates: list[dict] = []
        self.statuses: list[str] = []
        self.errors: list[str] = []
        apply(self.calls, first)

    def _take(self, message: dict) -> None:
        inner = message.get("messages", []) if message["type"] == "batch" else [message]
        for m in inner:
            if m["type"] in ("update", "removed"):
                self.updates.append(m)
            elif m["type"] == "status":
                self.statuses.append(m["backplane"])
            elif m["type"] == "error":
                self.errors.append(m["message"])
        if message.get("pos"):
            self.pos = message["pos"]
        self._apply(self.calls, message)

    def wait(self, what: str, predicate, timeout: float = FLOOR_WAIT_S):
        """Read until `predicate(self)` is true; AssertionError naming `what` if it never is."""
        import time

        end = time.monotonic() + timeout
        while not predicate(self):
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"viewer never saw {what}; calls: {self._json.dumps(self.calls)[:2000]}")
            try:
                raw = self.ws.recv(timeout=left)
            except TimeoutError:
                continue
            self._take(self._json.loads(raw))
        return self

    def send(self, message: dict) -> None:
        self.ws.send(self._json.dumps(message))

    def close(self) -> None:
        self._stack.close()


def call_started(call_id: str, agent_id: str):
    """A call.started as an agent's publisher sends it."""
    from monitor.events import CallStarted

    return CallStarted(call_id, 0.0, 0.0, agent_id, {"agent": {"channel": 0}, "customer": {"channel": 1}}, 16000,
                       "file:test.flac", "tiny.en")


def call_metrics(call_id: str, t: float, heat: int, hostility: float = 0.2):
    """A metrics event with the customer at `hostility`."""
    from monitor.events import Metrics, RoleMetrics

    roles = {
        "agent": RoleMetrics(pace_wpm=150.4),
        "customer": RoleMetrics(loudness_above_baseline_db=7.94, pace_wpm=188.2, hostility=hostility, speaking=True),
    }
    return Metrics(call_id, t, t, roles, False, 0.0, heat=heat, talk_ratio=0.453)


def call_final(call_id: str, t: float, role: str, text: str):
    """A transcript line that ended at `t`."""
    from monitor.events import TranscriptFinal

    return TranscriptFinal(call_id, t, t, role, text, t - 1.0, t, [])


class Floor:
    """A running floor for a test module: a real hub on a real redis-server, and a token file."""

    def __init__(self, hub: HubProcess, redis: RedisServer, token_file: Path, tokens: dict[str, str]) -> None:
        self.hub, self.redis, self.token_file, self.tokens = hub, redis, token_file, tokens

    @property
    def url(self) -> str:
        return self.hub.url


@pytest.fixture(scope="module")
def floor(tmp_path_factory, redis_server):
    """One hub on Redis for the module (tokens: alice, bob, viewer); its stderr is in `floor.hub.output()`."""
    where = tmp_path_factory.mktemp("floor")
    tokens = floor_token_file(where / "tokens.toml")
    hub = HubProcess(where / "tokens.toml", where / "hub.log", "--redis", redis_server.url)
    yield Floor(hub, redis_server, where / "tokens.toml", tokens)
    hub.stop()


# --- two agents on a floor, for the dashboards' tests ----------------------------------------------------


class FloorAgent:
    """An agent's link to the hub (a plain websockets client), publishing one call's schema-1 events, and a heartbeat
    every HEARTBEAT_S as the agent's publisher sends while its call is live: without it the call would go stale
    (STALE_S after its last event) whenever a slow test waits that long between two events."""

    def __init__(self, url, token, agent_id, call_id):
        import threading

        from websockets.sync.client import connect

        from monitor.events import CallStarted

        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(url, open_timeout=FLOOR_WAIT_S))
        self.ws.send(json.dumps({"type": "hello", "token": token}))
        welcome = json.loads(self.ws.recv(FLOOR_WAIT_S))
        assert welcome == {"type": "welcome", "role": "agent", "agent_id": agent_id}
        self.agent_id, self.call_id = agent_id, call_id
        self.send(CallStarted(call_id, 0.0, 0.0, agent_id, {"agent": {"channel": 0}, "customer": {"channel": 1}},
                              16000, "test", "tiny.en"))
        self._closing = threading.Event()
        self._beating = threading.Thread(target=self._heartbeats, name=f"heartbeats-{agent_id}", daemon=True)
        self._beating.start()

    def _heartbeats(self):
        from websockets.exceptions import ConnectionClosed

        from monitor.floor.protocol import HEARTBEAT_S, heartbeat

        beat = json.dumps(heartbeat(self.call_id))
        while not self._closing.wait(HEARTBEAT_S):
            try:
                self.ws.send(beat)  # websockets' sync send is thread-safe: whole messages, one at a time
            except ConnectionClosed:
                return

    def send(self, event):
        self.ws.send(json.dumps(event.to_dict()))

    def metrics(self, t, heat, hostility, loudness=1.0, pace=150.0):
        from monitor.events import Metrics, RoleMetrics

        roles = {
            "agent": RoleMetrics(pace_wpm=140.0),
            "customer": RoleMetrics(loudness_above_baseline_db=loudness, pace_wpm=pace, hostility=hostility),
        }
        self.send(Metrics(self.call_id, t, t, roles, overlap=False, silence_s=0.0, heat=heat, talk_ratio=0.5))

    def says(self, t, role, text):
        from monitor.events import TranscriptFinal

        self.send(TranscriptFinal(self.call_id, t, t, role, text, t - 1.0, t))

    def nudge(self, t, kind, severity, message):
        from monitor.events import Nudge

        self.send(Nudge(self.call_id, t, t, f"n1-{kind}", kind, severity, message, "heard in the test"))

    def supervisor(self, t, note=""):
        from monitor.events import SupervisorRequested

        self.send(SupervisorRequested(self.call_id, t, t, note))

    def lead_messages(self, count, timeout=FLOOR_WAIT_S):
        """The next `count` messages of type `lead` the hub sends this agent (acknowledgements, whispers)."""
        import time

        got, end = [], time.monotonic() + timeout
        while len(got) < count:
            message = json.loads(self.ws.recv(max(0.01, end - time.monotonic())))
            if message.get("type") == "lead":
                got.append(message)
        return got

    def close(self):
        self._closing.set()
        self._beating.join()
        self._stack.close()


def start_calls(hub, tokens):
    """Alice and Bob start their calls (call.started only)."""
    return FloorAgent(hub.url, tokens["alice"], "alice", "c-0000aaaa"), FloorAgent(hub.url, tokens["bob"], "bob", "c-0000bbbb")


def calm_talk(alice, bob):
    """Alice's call (longer, a little tense in words) and Bob's (shorter, calmer), both heat 0."""
    alice.says(29.0, "customer", "my parcel is late again")
    alice.metrics(30.0, heat=0, hostility=0.10)
    bob.says(18.0, "customer", "hello I am calling about my bill")
    bob.says(19.5, "agent", "happy to help with that")
    bob.metrics(20.0, heat=0, hostility=0.05)


def calm_floor(hub, tokens):
    """Both calls started and calm: alice's first on the board (more hostile, longer)."""
    alice, bob = start_calls(hub, tokens)
    calm_talk(alice, bob)
    return alice, bob


def escalate(bob):
    """Bob's customer blows up: critical heat, hostile, and the coach says to call the supervisor."""
    bob.says(24.0, "customer", "this is useless get me your manager right now")
    bob.metrics(24.5, heat=3, hostility=0.92, loudness=9.5, pace=210.0)
    bob.nudge(24.5, "call_supervisor", "critical", "Bring in your supervisor now")


