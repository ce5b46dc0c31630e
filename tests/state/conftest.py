"""Fixtures of the state store tests: every test runs on SQLite and, when reachable, on PostgreSQL.

PostgreSQL runs get a fresh schema per test (selected through the connection's ``search_path``), dropped
afterwards, so runs never see each other's rows. ``REBALANCER_TEST_PG_URL`` overrides the server URL.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from rebalancer.state.store import StateStore

PG_URL = os.environ.get("REBALANCER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@functools.cache
def postgres_unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    if importlib.util.find_spec("psycopg") is None:
        return "PostgreSQL driver psycopg is not installed (pip install 'psycopg[binary]')"
    engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return f"PostgreSQL at {PG_URL} is not reachable: {type(exc.orig or exc).__name__}"
    finally:
        engine.dispose()
    return None


def _admin(statement: str) -> None:
    engine = create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty state store: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    reason = postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    schema = f"rb_test_{uuid.uuid4().hex[:16]}"
    _admin(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        _admin(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[[], StateStore]]:
    """Opens StateStores on the test's URL (as separate processes would), closing them all afterwards."""
    opened: list[StateStore] = []

    def _open() -> StateStore:
        store = StateStore(store_url)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], StateStore]) -> StateStore:
    """One StateStore on an empty database."""
    return open_store()
