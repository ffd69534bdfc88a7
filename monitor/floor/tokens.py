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
```
`callmon hub token` appends an entry with a fresh random token and prints the token once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import tomllib
from dataclasses import dataclass
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
    if unknown or not isinstance(entries, list):
        raise TokenFileError(f"token file {p}: expected only [[token]] tables, found {', '.join(sorted(unknown)) or 'token'}")
    grants = []
    for n, entry in enumerate(entries, 1):
        grants.append(_grant(p, n, entry))
    return grants


def _grant(path: Path, n: int, entry: dict) -> Grant:
    where = f"token file {path}, token #{n}"
    role = entry.get("role")
    digest = str(entry.get("sha256", "")).lower()
    if role not in ("agent", "viewer"):
        raise TokenFileError(f"{where}: role must be \"agent\" or \"viewer\", got {role!r}")
    if not _HEX64.fullmatch(digest):
        raise TokenFileError(f"{where}: sha256 must be 64 hex digits (the hash of the token, never the token)")
    agent_id = entry.get("agent_id")
    if role == "agent" and not (isinstance(agent_id, str) and _ID.fullmatch(agent_id)):
        raise TokenFileError(f"{where}: an agent token needs agent_id (letters, digits, _ . @ -), got {agent_id!r}")
    extra = set(entry) - {"role", "agent_id", "name", "sha256"}
    if extra:
        raise TokenFileError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
    name = str(entry.get("name") or agent_id or "viewer")
    return Grant(role, agent_id if role == "agent" else None, name, digest)


def check(grants: list[Grant], token: str) -> Grant | None:
    """The grant a token opens, or None. Every entry is compared, each in constant time."""
    digest = hash_token(token).encode("ascii")
    found = None
    for grant in grants:
        if hmac.compare_digest(digest, grant.sha256.encode("ascii")):
            found = grant
    return found


def add_token(path: str | os.PathLike[str], role: str, *, agent_id: str | None = None, name: str | None = None) -> str:
    """Append a grant with a fresh random token to the file (created 0600 if absent); the token."""
    if role == "agent" and not (agent_id and _ID.fullmatch(agent_id)):
        raise BadInput("an agent token needs --agent-id ID (letters, digits, _ . @ -), e.g. --agent-id alice")
    if name is not None and not _ID.fullmatch(name):
        raise BadInput(f"--name must be letters, digits, _ . @ - (at most 64), got {name!r}")
    p = Path(path)
    if p.exists():
        load_tokens(p)  # refuse to append to a file the hub could not read
    token = secrets.token_urlsafe(32)
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

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def check(self, token: str) -> Grant | None:
        """The grant for a token; a file that changed is re-read first (a broken edit keeps the old grants)."""
        stamp = self._stat()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self.grants = load_tokens(self.path)
            except TokenFileError as exc:  # a half-saved edit must not lock everyone out
                log.warning("%s; keeping the %d token(s) read before", exc, len(self.grants))
        return check(self.grants, token)
