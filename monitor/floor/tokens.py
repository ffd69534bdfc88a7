"""The hub's token file: who may connect, as what. Only SHA-256 hashes of the tokens are stored.

```toml
[[token]]
role = "agent"          # may publish only calls whose call.started agent_id is this agent_id
agent_id = "alice"
sha256 = "<hex>"
[[token]]
role = "viewer"         # may only subscribe
name = "floor-1"
sha256 = "<hex>"
expires = 2026-12-31T18:00:00Z   # optional: the token stops working then (links open with it are closed)
```
`callmon hub token` appends an entry with a fresh random token and prints the token once. Revoking a
token is deleting its entry: the hub re-reads the file when it changes (and on SIGHUP) and closes the
links that were opened with a token that is gone or expired.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import time
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import BadInput

log = logging.getLogger(__name__)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


class TokenFileError(BadInput):
    """The token file is missing, unreadable or malformed (one line: which entry, what to fix)."""


@dataclass(frozen=True)
class Grant:
    """What one token allows: an agent (bound to its agent id) or a viewer (named for the logs)."""

    role: str
    agent_id: str | None
    name: str
    sha256: str
    expires: float | None = None  # unix seconds; None: never

    def valid(self, now: float) -> bool:
        """Whether the token still opens the hub at `now` (unix seconds)."""
        return self.expires is None or now < self.expires


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token, as the file stores it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def load_tokens(path: str | os.PathLike[str]) -> list[Grant]:
    """Every grant in the token file; TokenFileError naming the entry when one is wrong."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TokenFileError(
            f"token file {p} does not exist; create it with: callmon hub token --role viewer --name floor-1 --tokens {p}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenFileError(f"cannot read token file {p}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TokenFileError(f"token file {p} is not valid TOML ({exc})") from None
    entries = data.get("token", [])
    unknown = set(data) - {"token"}
    if unknown or not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise TokenFileError(f"token file {p}: expected only [[token]] tables, found {', '.join(sorted(unknown)) or 'token'}")
    grants = []
    for n, entry in enumerate(entries, 1):
        grants.append(_grant(p, n, entry))
    return grants


def _grant(path: Path, n: int, entry: dict) -> Grant:
    where = f"token file {path}, token #{n}"
    role = entry.get("role")
    digest = entry.get("sha256", "")
    if role not in ("agent", "viewer"):
        raise TokenFileError(f"{where}: role must be \"agent\" or \"viewer\", got {str(role)[:40]!r}")
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest.lower()):
        raise TokenFileError(f"{where}: sha256 must be 64 hex digits (the hash of the token, never the token)")
    agent_id = entry.get("agent_id")
    if role == "agent" and not (isinstance(agent_id, str) and _ID.fullmatch(agent_id)):
        raise TokenFileError(f"{where}: an agent token needs agent_id (letters, digits, _ . @ -), got {agent_id!r}")
    extra = set(entry) - {"role", "agent_id", "name", "sha256", "expires"}
    if extra:
        raise TokenFileError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
    name = entry.get("name") or agent_id or "viewer"
    if not isinstance(name, str) or not _ID.fullmatch(name):
        raise TokenFileError(f"{where}: name must be letters, digits, _ . @ - (at most 64)")
    expires = entry.get("expires")
    if expires is not None:
        if not isinstance(expires, datetime) or expires.tzinfo is None:
            raise TokenFileError(f"{where}: expires must be a TOML date-time with a zone, e.g. expires = 2026-12-31T18:00:00Z")
        expires = expires.timestamp()
    return Grant(role, agent_id if role == "agent" else None, name, digest.lower(), expires)


def new_token() -> str:
    """A fresh random token: 32 random bytes, URL-safe base64, never beginning with "-"."""
    # It is given as `--token TOKEN`, and argparse takes a value beginning with "-" for an option: one token in
    # 64 would be refused by `callmon floor`, `live` and `replay` as "--token: expected one argument".
    while (token := secrets.token_urlsafe(32)).startswith("-"):
        pass
    return token


def add_token(path: str | os.PathLike[str], role: str, *, agent_id: str | None = None, name: str | None = None) -> str:
    """Append a grant with a fresh random token to the file (created 0600 if absent); the token."""
    if role == "agent" and not (agent_id and _ID.fullmatch(agent_id)):
        raise BadInput("an agent token needs --agent-id ID (letters, digits, _ . @ -), e.g. --agent-id alice")
    if name is not None and not _ID.fullmatch(name):
        raise BadInput(f"--name must be letters, digits, _ . @ - (at most 64), got {name!r}")
    p = Path(path)
    if p.exists():
        load_tokens(p)  # refuse to append to a file the hub could not read
    token = new_token()
    lines = ["[[token]]", f'role = "{role}"']
    if role == "agent":
        lines.append(f'agent_id = "{agent_id}"')
    if name or role == "viewer":
        lines.append(f'name = "{name or "viewer"}"')
    lines.append(f'sha256 = "{hash_token(token)}"')
    try:
        fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            if f.tell() > 0:
                f.write("\n")
            f.write("\n".join(lines) + "\n")
    except OSError as exc:
        raise TokenFileError(f"cannot write token file {p}: {exc}") from None
    return token


class TokenStore:
    """The grants of a token file, re-read when the file changes (tokens added while the hub runs work at once)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._stamp = self._stat()
        self.grants = load_tokens(self.path)
        self._index(self.grants)

    def still_valid(self, grant: Grant, now: float) -> bool:
        """Whether a grant an open link was opened with is still in the file and not expired."""
        return grant in self._current and grant.valid(now)

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def reload(self, force: bool = False) -> bool:
        """Re-read the file if it changed (or always, `force`: SIGHUP); whether the grants were re-read.

        A broken edit keeps the old grants (one warning line): a half-saved file must not lock everyone out.
        """
        stamp = self._stat()
        if stamp == self._stamp and not force:
            return False
        self._stamp = stamp
        try:
            grants = load_tokens(self.path)
        except TokenFileError as exc:
            log.warning("%s; keeping the %d token(s) read before", exc, len(self.grants))
            return False
        self.grants = grants
        self._index(grants)
        return True

    def _index(self, grants: list[Grant]) -> None:
        # Thousands of agents: a hello must not compare every entry (a millisecond each, a second of the hub's loop
        # when a hub's agents all reconnect to another), nor the check of every open link each second scan the
        # list (quadratic). Looked up by the token's SHA-256: timing can tell nothing about a token from that.
        self._current = frozenset(grants)
        self._by_digest = {g.sha256: g for g in grants}  # a digest listed twice: the later entry, as before

    def check(self, token: str, now: float | None = None) -> Grant | None:
        """The grant a token opens (not expired), or None; a file that changed is re-read first."""
        self.reload()
        digest = hash_token(token)
        grant = self._by_digest.get(digest)
        if grant is None or not hmac.compare_digest(digest, grant.sha256):
            return None
        return grant if grant.valid(time.time() if now is None else now) else None
