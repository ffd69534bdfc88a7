"""Where the project's data files are: next to the installed package, or in the source tree.

A wheel carries config/default.toml and models/ inside the package (pyproject force-include);
an editable install (what scripts/setup makes) reads them from the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_REPO = _PACKAGE.parent


def project_file(relative: str) -> Path:
    """`relative` (e.g. "models/lexicon.toml") inside the package if shipped there, else in the repository."""
    packaged = _PACKAGE / relative
    return packaged if packaged.exists() else _REPO / relative
