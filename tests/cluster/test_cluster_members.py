"""The cluster's "done when": three member processes share 33 jobs on one PostgreSQL database; a killed member's
jobs continue on the others within 15 s; a member frozen past its lease sends nothing stale when it wakes; the
books never hold more than their ladder (sampled continuously from the sandbox's engine); the final books are exact.

The market moves every 5 s (0.3 %, beyond the 0.1 % tolerance), so every job keeps replacing its ladder and a
stale batch would show as extra orders.
"""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

from rebalancer.engine.runner import run_pass
from rebalancer.jobfile.load import load_job
from rebalancer.state.store import StateStore
from tests.cluster.conftest import SYMBOL, account, wait_for
from tests.reliability.kit import fast_client

JOBS = 33
EVERY = "10s"
LADDER = 6  # three levels a side
KILL_TAKEOVER_SECONDS = 15.0
FREEZE_SECONDS = 12.0  # past the 9 s lease
FREEZE_GRACE_SECONDS = 20.0  # the longest the freeze is drawn out for the live member to have run every job


class BookWatch:
    """Samples every job's book from the engine in a thread; remembers the largest count and every excess."""

    def __init__(self, engine: object, keys: list[str]) -> None:
        self._engine, self._keys = engine, keys
        self.excess: list[tuple[str, int]] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> BookWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for key in self._keys:
                count = len(self._engine.open_orders(key, SYMBOL))  # type: ignore[attr-defined]
                if count > LADDER:
                    self.excess.append((key[:16], count))
            self.samples += 1


class PriceMover:
    """Moves the market back and forth by 0.3 % every 5 s in a thread, so every ladder keeps moving."""

    def __init__(self, engine: object) -> None:
        self._engine = engine
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        prices = (Decimal("30090"), Decimal("30000"))
        flip = 0
        while not self._stop.wait(5.0):
            self._engine.set_price(SYMBOL, prices[flip % 2])  # type: ignore[attr-defined]
            flip += 1


def _member_name(pid: int) -> str:
    import socket

    return f"{socket.gethostname()}:{pid}:cluster"


def _full(engine: object, keys: list[str]) -> bool:
    return all(len(engine.open_orders(k, SYMBOL)) == LADDER for k in keys)  # type: ignore[attr-defined]


def test_members_share_jobs_take_over_from_the_dead_and_fence_the_frozen(
    sandbox, cluster_jobs, spawn_member, cluster_url
) -> None:
    folder, env = cluster_jobs(JOBS, every=EVERY)
    keys = [account(i)[0] for i in range(JOBS)]
    members = [spawn_member(str(folder), env=env) for _ in range(3)]
    names = [_member_name(m.pid) for m in members]
    mover = PriceMover(sandbox.engine)
    with StateStore(cluster_url) as store, BookWatch(sandbox.engine, keys) as watch:
        assert wait_for(lambda: _full(sandbox.engine, keys), timeout=60), _logs(members)

        def passes_by_member() -> dict[str, int]:
            return {m.member: m.passes for m in store.members()}

        assert wait_for(lambda: all(passes_by_member().get(n, 0) > 0 for n in names), timeout=20), (
            f"work must reach every member: {passes_by_member()}"
        )
        mover.start()
        time.sleep(3)

        # SIGKILL one member: each of its jobs (the last it ran, and those it was running) goes on elsewhere.
        orphans = _jobs_of(store, names[0])
        killed_at = datetime.now(UTC)
        members[0].kill()
        assert orphans, "the killed member had jobs"
        assert wait_for(lambda: _went_on(store, orphans, names[1:]), timeout=KILL_TAKEOVER_SECONDS), (
            "jobs of the killed member must go on elsewhere within 15 s: "
            + str([(j.job, j.last_member, j.last_pass_at) for j in store.cluster_jobs() if j.job in orphans])
            + _queue(cluster_url)
        )
        began = [j.last_pass_at for j in store.cluster_jobs() if j.job in orphans and j.last_pass_at is not None]
        takeover = max(0.0, *((at - killed_at).total_seconds() for at in began))

        # SIGSTOP another past its lease: its jobs go on on the third; SIGCONT: it sends nothing stale.
        frozen = _jobs_of(store, names[1])
        members[1].send(signal.SIGSTOP)
        time.sleep(FREEZE_SECONDS)
        assert wait_for(lambda: _went_on(store, frozen, names[2:]), timeout=FREEZE_GRACE_SECONDS), (
            "while a member is frozen, its jobs must go on on the live one: " + _queue(cluster_url)
        )
        members[1].send(signal.SIGCONT)
        time.sleep(4)
        mover.stop()

        assert wait_for(lambda: _full(sandbox.engine, keys), timeout=30), _logs(members)
        assert wait_for(lambda: all(_exact(store, folder / f"c{i:03d}.yaml", sandbox) for i in range(JOBS)), 30)
        assert watch.samples > 100
        assert watch.excess == [], f"books held more than their ladder: {watch.excess[:10]}"
        assert all(m.stop() == 0 for m in members[1:]), _logs(members)
    assert "Traceback" not in members[1].log + members[2].log
    assert takeover <= KILL_TAKEOVER_SECONDS


def _jobs_of(store: StateStore, member: str) -> dict[str, datetime | None]:
    """The jobs ``member`` ran last or is running now (holds the lease of), with the start of their last pass."""
    jobs = store.cluster_jobs()
    running = {j.job for j in jobs if (store.lease_holder(j.job) or "").startswith(member + "#")}
    return {j.job: j.last_pass_at for j in jobs if j.last_member == member or j.job in running}


def _went_on(store: StateStore, jobs: dict[str, datetime | None], members: list[str]) -> bool:
    """Whether each of ``jobs`` had a later pass than the one it had, on one of ``members``."""
    rows = {j.job: j for j in store.cluster_jobs()}
    return all(
        rows[job].last_member in members
        and rows[job].last_pass_at is not None
        and (before is None or rows[job].last_pass_at > before)
        for job, before in jobs.items()
    )


def _exact(store: StateStore, path: object, sandbox) -> bool:
    """True when a dry run of the job's file finds nothing to change on its book."""
    job = load_job(path)  # type: ignore[arg-type]
    index = int(job.name[1:])
    key, secret = account(index)
    client = fast_client(sandbox.url, key, secret)
    try:
        return not run_pass(job, client, store, apply=False).plan.has_changes
    finally:
        client.close()


def _logs(members: list) -> str:
    return "\n".join(f"--- member {i}\n{m.log[-3000:]}" for i, m in enumerate(members))


def _queue(url: str) -> str:
    """The job queue's rows and workers, to explain a failure."""
    import psycopg
    from sqlalchemy.engine import make_url

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        jobs = conn.execute(
            "SELECT id, status, task_name, lock, worker_id, scheduled_at FROM rebalancer_queue.procrastinate_jobs"
            " WHERE status IN ('todo', 'doing') ORDER BY id"
        ).fetchall()
        workers = conn.execute("SELECT id, last_heartbeat FROM rebalancer_queue.procrastinate_workers").fetchall()
        leases = conn.execute("SELECT job, holder, epoch, expires_at_ms FROM leases ORDER BY job").fetchall()
    return f"jobs={jobs} workers={workers} leases={leases}"
