"""The `callmon hub` and `callmon floor` subcommands (the websocket library is imported only when they run)."""

from __future__ import annotations

import argparse
import sys

from ..errors import BadInput
from .protocol import DEFAULT_PORT, REMOVE_AFTER_S, STALE_S


def register(sub: argparse._SubParsersAction) -> None:
    """Add `hub` and `floor` to the `callmon` parser."""
    hub = sub.add_parser(
        "hub",
        help="run the floor hub: agents publish their calls, team leads watch them",
        description=(
            "Run the floor hub, a websocket server. Agents publish their live calls to it "
            "(callmon replay/live --hub URL --token T); team leads watch every call with 'callmon floor' or the web "
            "wallboard the hub serves at http://HOST:PORT/. Every client needs a token from the token file: "
            "an agent token publishes only that agent's calls, a viewer token only watches. "
            "Create tokens with 'callmon hub token'."
        ),
        epilog=(
            "examples:\n"
            "  callmon hub token --role agent --agent-id alice --tokens floor-tokens.toml   prints alice's token once\n"
            "  callmon hub token --role viewer --name floor-1 --tokens floor-tokens.toml\n"
            "  callmon hub --tokens floor-tokens.toml                       ws://127.0.0.1:8765/ws\n"
            "  callmon hub --tokens floor-tokens.toml --host 0.0.0.0 --cert hub.pem --key hub.key   TLS (wss://)\n"
            "  callmon hub --tokens floor-tokens.toml --port 8765 --redis redis://127.0.0.1:6379/0   two hubs sharing\n"
            "  callmon hub --tokens floor-tokens.toml --port 8766 --redis redis://127.0.0.1:6379/0   one floor\n"
            "  kill -HUP <hub pid>    re-read the token file now (it is also re-read when it changes)\n"
            "see docs/FLOOR.md for the protocol"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hub.add_argument("--tokens", metavar="FILE", help="the token file (TOML; required)")
    hub.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    hub.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    hub.add_argument("--cert", metavar="PEM", help="TLS certificate chain: serve wss:// and https:// (with --key)")
    hub.add_argument("--key", metavar="PEM", help="the TLS certificate's private key")
    hub.add_argument(
        "--stale-s", type=_seconds, default=STALE_S, metavar="S",
        help=f"a live call with no event or heartbeat for S seconds is shown stale (default {STALE_S:g})",
    )
    hub.add_argument(
        "--remove-after-s", type=_seconds, default=REMOVE_AFTER_S, metavar="S",
        help=f"an ended call leaves the board S seconds after its end (default {REMOVE_AFTER_S:g})",
    )
    hub.add_argument(
        "--redis", metavar="URL",
        help="join the backplane at redis://HOST:PORT/DB: every hub on it shows every call, and calls outlive a hub "
             "(default: this hub alone)",
    )
    hub.add_argument("-v", "--verbose", action="store_true", help="log every connection on stderr")
    hub.set_defaults(run=_hub, hub_action=None)
    actions = hub.add_subparsers(dest="hub_action", metavar="ACTION")
    token = actions.add_parser(
        "token",
        help="add a token to the token file and print it once",
        description=(
            "Append a new random token to the token file (created if absent, readable by you only) and print the "
            "token once on stdout. The file keeps only its SHA-256 hash: copy the token now. A running hub reads "
            "the new entry at the next connection."
        ),
        epilog=(
            "examples:\n"
            "  callmon hub token --role agent --agent-id alice --tokens floor-tokens.toml\n"
            "  callmon hub token --role viewer --name wallboard --tokens floor-tokens.toml"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    token.add_argument("--role", choices=("agent", "viewer"), required=True,
                       help="agent: publishes its own calls; viewer: watches the floor")
    token.add_argument("--agent-id", metavar="ID", help="the agent's id, as in its config's [call] agent_id (agents)")
    token.add_argument("--name", metavar="NAME", help="a name for the logs (viewers; default viewer)")
    token.add_argument("--tokens", metavar="FILE", dest="token_file", required=True, help="the token file")
    token.add_argument("-v", "--verbose", action="store_true", help=argparse.SUPPRESS)

    floor = sub.add_parser(
        "floor",
        help="watch every live call on the floor (terminal dashboard)",
        description=(
            "The team lead's dashboard: every call published to the hub, ranked by heat, with nudges and "
            "supervisor requests; open a call to read its transcript. Needs a viewer token."
        ),
        epilog=(
            "examples:\n"
            "  callmon floor --hub ws://floor-hub:8765 --token $VIEWER_TOKEN\n"
            "  callmon floor --hub ws://floor-hub:8765 --no-tui --format jsonl | jq -c 'select(.type==\"update\")'"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    floor.add_argument("--hub", metavar="URL", default=f"ws://127.0.0.1:{DEFAULT_PORT}",
                       help=f"the hub (default ws://127.0.0.1:{DEFAULT_PORT}; wss:// for TLS)")
    floor.add_argument("--token", metavar="T", help="a viewer token (or set CALLMON_TOKEN)")
    floor.add_argument("--no-tui", action="store_true",
                       help="no dashboard: print the floor's snapshot and every change on stdout, for scripts")
    floor.add_argument("--format", choices=("jsonl",), default="jsonl",
                       help="with --no-tui: one JSON object a line (snapshot, update, removed, status, link)")
    floor.add_argument("-v", "--verbose", action="store_true", help="log details on stderr")
    floor.set_defaults(run=_floor)


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _hub(args: argparse.Namespace) -> int:
    if args.hub_action == "token":
        from .tokens import add_token

        token = add_token(args.token_file, args.role, agent_id=args.agent_id, name=args.name)
        print(token)
        who = f"agent {args.agent_id}" if args.role == "agent" else f"viewer {args.name or 'viewer'}"
        print(f"callmon hub: added a token for {who} to {args.token_file}; it is shown only this once", file=sys.stderr)
        return 0
    if not args.tokens:
        raise BadInput("callmon hub needs --tokens FILE; create one with: callmon hub token --role viewer --tokens FILE")
    if args.verbose:  # connections and rejections, not every frame
        import logging

        logging.getLogger("websockets").setLevel(logging.INFO)
        logging.getLogger("asyncio").setLevel(logging.WARNING)
    from .hub import HubSettings, run_hub

    return run_hub(HubSettings(
        tokens=args.tokens, host=args.host, port=args.port, cert=args.cert, key=args.key,
        stale_s=args.stale_s, remove_after_s=args.remove_after_s, redis=args.redis,
    ))


def _floor(args: argparse.Namespace) -> int:
    from .dashboard import run_floor

    return run_floor(args)
