"""How many write transactions a pass commits: the write-ahead and the outcome, and nothing else.

Counted on the store's engine (SQLAlchemy events): a committed transaction that ran an INSERT, UPDATE or DELETE
is one write. The lease's own writes are left out (the scheduler renews it on its own rhythm, not per pass). The
passes run as the daemon and the commands run them (``JobSession.run`` under a held lease), against the sandbox.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from sqlalchemy import event

from rebalancer.engine.lease import JobSession
from rebalancer.engine.runner import run_pass
from rebalancer.jobfile.load import load_job
from rebalancer.models import Side
from rebalancer.state.store import StateStore
from rebalancer.vocab import Mode, PassResult, PausedBy
from tests.jobtext import ladder_job
from tests.reliability.kit import fast_client, write_job


@contextlib.contextmanager
def write_transactions(store: StateStore) -> Iterator[list[str]]:
    """The committed transactions that wrote while the block ran (lease writes excluded), one entry each."""
    engine = store._db._engine
    wrote: dict[int, bool] = {}
    tags: list[str] = []

    def on_sql(conn, cursor, statement, *rest) -> None:  # type: ignore[no-untyped-def]
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE") and " leases" not in statement:
            wrote[id(conn)] = True

    def on_commit(conn) -> None:  # type: ignore[no-untyped-def]
        if wrote.pop(id(conn), False):
            tags.append("w")

    def on_rollback(conn) -> None:  # type: ignore[no-untyped-def]
        wrote.pop(id(conn), None)

    hooks = (("before_cursor_execute", on_sql), ("commit", on_commit), ("rollback", on_rollback))
    for name, hook in hooks:
        event.listen(engine, name, hook)
    try:
        yield tags
    finally:
        for name, hook in hooks:
            event.remove(engine, name, hook)


def test_a_pass_writes_once_for_its_outcome_and_once_ahead_of_placing(sandbox, tmp_path: Path) -> None:
    path = write_job(tmp_path, "tx", sandbox.url, ownership="tracked", levels=5)
    path.write_text(path.read_text() + "after_fill:\n  delay: 1h\n")  # a filled level waits: the pass stays quiet
    job = load_job(path)
    with (
        StateStore(f"sqlite:///{tmp_path / 's.db'}") as store,
        fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client,
    ):
        session = JobSession(job, client, store, holder="test", ttl_seconds=60)
        assert session.hold()

        with write_transactions(store) as writes:
            first = session.run(Mode.RUN)
        assert first.result is PassResult.OK and first.plan.summary["place"] == 10
        assert len(writes) == 2, "the write-ahead, then the outcome"

        with write_transactions(store) as writes:
            quiet = session.run(Mode.RUN)
        assert quiet.result is PassResult.NO_CHANGES and len(writes) == 1

        buy = max(
            (o for o in sandbox.engine.open_orders(sandbox.api_key, job.symbol) if o.side is Side.BUY),
            key=lambda o: o.price,
        )
        sandbox.engine.fill(int(buy.id))
        with write_transactions(store) as writes:
            learnt = session.run(Mode.RUN)
        assert learnt.result is PassResult.NO_CHANGES and len(learnt.fills) == 1
        assert len(writes) == 1, "the fill, the watch list, the untracked order and the pass row: one outcome"
        assert [f.order_id for f in store.fills(job.name)] == [buy.id]
        assert buy.id not in store.tracked_ids(job.name)

        with write_transactions(store) as writes:
            dry = run_pass(job, client, store, apply=False)
        assert dry.result is PassResult.NO_CHANGES
        assert writes == [], "a dry run writes nothing"

        with write_transactions(store) as writes:
            cancelled = session.run(Mode.CANCEL, cancel=True)
        assert cancelled.result is PassResult.OK and cancelled.plan.summary["cancel"] == 9
        assert len(writes) == 1, "a cancel cannot double: no write-ahead"
        assert store.tracked_ids(job.name) == frozenset()
        ok, quiet = PassResult.OK, PassResult.NO_CHANGES
        assert [r.result for r in store.history(job.name, limit=10)] == [ok, quiet, quiet, ok]  # newest first


def test_a_loss_limit_trip_writes_its_pause_ahead_of_the_cancels_then_the_outcome(sandbox, tmp_path: Path) -> None:
    path = tmp_path / "risky.yaml"
    path.write_text(ladder_job("risky", sandbox.url, ownership="tracked", limits='{band: 10%, max_loss: "0.1"}'))
    job = load_job(path)
    with (
        StateStore(f"sqlite:///{tmp_path / 's.db'}") as store,
        fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client,
    ):
        session = JobSession(job, client, store, holder="test", ttl_seconds=60)
        assert session.hold()
        session.run(Mode.RUN)
        book = sandbox.engine.open_orders(sandbox.api_key, job.symbol)
        sandbox.engine.fill(int(min((o for o in book if o.side is Side.SELL), key=lambda o: o.price).id))
        sandbox.engine.set_price(job.symbol, sandbox.engine.mid(job.symbol) * Decimal("1.05"))  # the short loses
        with write_transactions(store) as writes:
            fired = session.run(Mode.RUN)
        assert fired.plan.paused_by is PausedBy.MAX_LOSS and fired.result is PassResult.OK
        assert sandbox.engine.open_orders(sandbox.api_key, job.symbol) == ()
        assert store.is_paused(job.name) and store.paused_by(job.name)[0] == "max_loss"
        assert len(writes) == 2, "the pause with the pass row first, then the outcome"


def test_a_placing_pass_checks_its_lease_inside_the_write_ahead_before_writing(sandbox, tmp_path: Path) -> None:
    """The fencing read of the first batch is the write-ahead's own transaction: read inputs, write-ahead, outcome."""
    job = load_job(write_job(tmp_path, "fold", sandbox.url, ownership="tracked", levels=2))
    with (
        StateStore(f"sqlite:///{tmp_path / 's.db'}") as store,
        fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client,
    ):
        session = JobSession(job, client, store, holder="test", ttl_seconds=60)
        assert session.hold()
        transactions: list[list[str]] = [[]]

        def on_sql(statement: str) -> None:  # what the driver runs, the store's own BEGIN included
            if statement in ("COMMIT", "ROLLBACK"):
                transactions.append([])
            elif not statement.startswith("PRAGMA busy_timeout"):  # asking for the write lock without sleeping
                transactions[-1].append(" ".join(statement.split()[:3]))

        def traced(dbapi_connection, *rest) -> None:  # type: ignore[no-untyped-def]
            dbapi_connection.set_trace_callback(on_sql)

        def untraced(dbapi_connection, *rest) -> None:  # type: ignore[no-untyped-def]
            dbapi_connection.set_trace_callback(None)

        hooks = (("checkout", traced), ("checkin", untraced))
        for name, hook in hooks:
            event.listen(store._db._engine, name, hook)
        report = session.run(Mode.RUN)
        for name, hook in hooks:
            event.remove(store._db._engine, name, hook)
        assert report.result is PassResult.OK and report.plan.summary["place"] == 4
        done = [t for t in transactions if t]
        assert len(done) == 3, done
        ahead = done[1]
        assert ahead[:3] == ["BEGIN IMMEDIATE", "SELECT leases.job FROM", "INSERT INTO passes"], ahead
        assert not any("leases" in s for t in (done[0], done[2]) for s in t), "no fencing read of its own"
