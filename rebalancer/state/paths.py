"""Where rebalancer keeps its state on disk (docs/architecture.md, "Where state lives").

One directory holds the state store (``state.db``) and the embedded sandbox's world. It is chosen, in order,
by ``$REBALANCER_STATE_DIR``, ``$XDG_STATE_HOME/rebalancer`` and ``~/.local/state/rebalancer``; the state
store's database URL may instead be given whole by ``$REBALANCER_STATE_URL`` (for example a PostgreSQL URL).
"""

from __future__ import annotations

import os
from pathlib import Path

from rebalancer.errors import StateError

STATE_DIR_ENV = "REBALANCER_STATE_DIR"
STATE_URL_ENV = "REBALANCER_STATE_URL"
STATE_DB_NAME = "state.db"


def use_state_dir(path: str | Path) -> None:
    """Use ``path`` as the state directory from now on, in this process and the processes it starts.

    ``rebalancer --state-dir`` calls it; it sets ``$REBALANCER_STATE_DIR`` so every reader agrees on one place.
    """
    os.environ[STATE_DIR_ENV] = str(Path(path).expanduser().absolute())


def _chosen_dir() -> Path:
    """The state directory named by the environment, without touching the disk."""
    explicit = os.environ.get(STATE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    # The XDG spec says a relative XDG_STATE_HOME is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "rebalancer"
    return Path.home() / ".local" / "state" / "rebalancer"


def state_dir() -> Path:
    """The state directory, created with mode 0700 if missing (order history is nobody else's business)."""
    path = _chosen_dir()
    if not path.is_dir():
        try:
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o700)
        except OSError as exc:
            raise StateError(f"state directory {path}: {exc.strerror or exc}") from None
    return path


def default_url() -> str:
    """The state store's URL: ``$REBALANCER_STATE_URL`` if set, else ``state.db`` in the state directory."""
    explicit = os.environ.get(STATE_URL_ENV)
    if explicit:
        return explicit
    return f"sqlite:///{state_dir() / STATE_DB_NAME}"
