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

from rebalancer.jobfile.load import load_job
from rebalancer.runner import run_pass
from rebalancer.state.store import StateStore
from tests.cluster.conftest import SYMBOL, account, wait_for
from tests.reliability.kit import fast_client

JOBS = 33
EVERY = "10s"
LADDER = 6  # three levels a side
KILL_TAKEOVER_SECONDS = 15.0
FREEZE_SECONDS = 12.0  # past the 9 s lease


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

        # SIGKILL one member: every job, its own included, runs on the others within 15 s.
        killed_at = datetime.now(UTC)
        members[0].kill()

        def all_ran_elsewhere_since_kill() -> bool:
            jobs = store.cluster_jobs()
            return len(jobs) == JOBS and all(
                j.last_pass_at is not None and j.last_pass_at > killed_at and j.last_member in names[1:]
                for j in jobs
            )

        assert wait_for(all_ran_elsewhere_since_kill, timeout=KILL_TAKEOVER_SECONDS), (
            "jobs of the killed member must go on elsewhere within 15 s: "
            + str([(j.job, j.last_member, j.last_pass_at) for j in store.cluster_jobs()])
        )
        takeover = (datetime.now(UTC) - killed_at).total_seconds()

        # SIGSTOP another past its lease; the third carries every job meanwhile; SIGCONT: nothing stale is sent.
        members[1].send(signal.SIGSTOP)
        frozen_at = datetime.now(UTC)
        time.sleep(FREEZE_SECONDS)
        assert all(
            j.last_pass_at is not None and j.last_pass_at > frozen_at and j.last_member == names[2]
            for j in store.cluster_jobs()
        ), "while a member is frozen, the live one must run every job"
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
