"""Where state lives: the state directory's precedence and permissions, and the default store URL."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from rebalancer.state.paths import default_url, state_dir
from rebalancer.state.store import StateStore


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No state variables set and HOME pointing into tmp_path; returns that HOME."""
    for name in ("REBALANCER_STATE_DIR", "REBALANCER_STATE_URL", "XDG_STATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def test_default_is_under_home(clean_env: Path) -> None:
    assert state_dir() == clean_env / ".local" / "state" / "rebalancer"


def test_xdg_state_home_wins(clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir() == tmp_path / "xdg" / "rebalancer"


def test_relative_xdg_state_home_is_ignored(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "relative/dir")
    assert state_dir() == clean_env / ".local" / "state" / "rebalancer"


def test_explicit_dir_wins_over_xdg(clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("REBALANCER_STATE_DIR", str(tmp_path / "mine"))
    assert state_dir() == tmp_path / "mine"


def test_created_private(clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REBALANCER_STATE_DIR", str(tmp_path / "a" / "b"))
    path = state_dir()
    assert path.is_dir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o700


def test_existing_dir_is_left_alone(clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    monkeypatch.setenv("REBALANCER_STATE_DIR", str(existing))
    assert state_dir() == existing
    assert stat.S_IMODE(existing.stat().st_mode) == 0o755


def test_default_url_is_state_db_in_state_dir(clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REBALANCER_STATE_DIR", str(tmp_path / "st"))
    assert default_url() == f"sqlite:///{tmp_path / 'st' / 'state.db'}"


def test_state_url_overrides(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REBALANCER_STATE_URL", "postgresql+psycopg://u@db.example/rb")
    assert default_url() == "postgresql+psycopg://u@db.example/rb"
    assert not (clean_env / ".local").exists()


def test_store_without_url_uses_state_dir(clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REBALANCER_STATE_DIR", str(tmp_path / "st"))
    with StateStore() as store:
        store.set_paused("job", True)
    assert (tmp_path / "st" / "state.db").is_file()
    with StateStore() as store:
        assert store.is_paused("job")
