"""Reloads go file by file: a broken file keeps its old job running, never blocks the others, and is recorded."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

from rebalancer.daemon.scheduler import Daemon
from rebalancer.daemon.supervisor import Supervisor
from rebalancer.engine.connect import open_exchange
from rebalancer.state.store import StateStore


def _book(sandbox, symbol: str):
    return sandbox.engine.open_orders(sandbox.api_key, symbol)


@contextlib.contextmanager
def supervised(store: StateStore, sandbox, paths: list[str]):
    env = {"REBALANCER_API_KEY": sandbox.api_key, "REBALANCER_SECRET_KEY": sandbox.secret_key}
    daemon = Daemon(store, opener=lambda job: open_exchange(job, env), stop_wait=10)
    supervisor = Supervisor(paths, store, daemon=daemon)
    supervisor.start()
    try:
        yield supervisor
    finally:
        supervisor.stop()


def _sample(supervisor: Supervisor, name: str, file: Path) -> float | None:
    return supervisor.daemon.metrics.registry.get_sample_value(name, {"file": str(file)})


def test_a_broken_file_keeps_its_old_job_and_never_blocks_another_file(tmp_path, sandbox, job_text, wait_for):
    folder = tmp_path / "jobs"
    folder.mkdir()
    a, b = folder / "a.yaml", folder / "b.yaml"
    a.write_text(job_text("a", symbol="btcusdt", levels=1))
    b.write_text(job_text("b", symbol="ethusdt", levels=1))
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store, supervised(store, sandbox, [str(folder)]) as sup:
        assert wait_for(lambda: len(_book(sandbox, "btcusdt")) == 2 and len(_book(sandbox, "ethusdt")) == 2)
        old_a = sup.daemon.jobs["a"]
        a.write_text(job_text("a", symbol="btcusdt", levels=3) + "bogus: key\n")
        b.write_text(job_text("b", symbol="ethusdt", levels=2))

        merged = sup.reload()

        assert [r.file for r in merged.refused] == [str(a)]
        assert wait_for(lambda: len(_book(sandbox, "ethusdt")) == 4), "the valid change must load"
        assert sup.daemon.jobs["a"] == old_a, "the broken file keeps its old version"
        sandbox.engine.cancel_all(sandbox.api_key, "btcusdt")
        assert wait_for(lambda: len(_book(sandbox, "btcusdt")) == 2), "and that version keeps running"
        assert _sample(sup, "rebalancer_reload_failures_total", a) == 1
        assert _sample(sup, "rebalancer_reload_failing", a) == 1
        [failure] = store.reload_failures()
        assert failure.file == str(a.absolute())
        assert failure.job == "a"
        assert failure.problem.startswith(f"{a}:") and "bogus" in failure.problem

        sup.reload()  # still broken: counted again, recorded once
        assert _sample(sup, "rebalancer_reload_failures_total", a) == 2
        assert [f.times for f in store.reload_failures()] == [2]

        a.write_text(job_text("a", symbol="btcusdt", levels=3))
        sup.reload()
        assert wait_for(lambda: len(_book(sandbox, "btcusdt")) == 6)
        assert store.reload_failures() == []
        assert _sample(sup, "rebalancer_reload_failing", a) == 0


def test_a_new_broken_file_and_a_name_clash_are_refused_alone(tmp_path, sandbox, job_text, wait_for):
    folder = tmp_path / "jobs"
    folder.mkdir()
    a = folder / "a.yaml"
    a.write_text(job_text("a", symbol="btcusdt", levels=1))
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store, supervised(store, sandbox, [str(folder)]) as sup:
        assert wait_for(lambda: len(_book(sandbox, "btcusdt")) == 2)
        (folder / "broken.yaml").write_text("version: 1\nname: [\n")
        (folder / "twin.yaml").write_text(job_text("a", symbol="ethusdt", levels=1))
        (folder / "c.yaml").write_text(job_text("c", symbol="ethusdt", levels=2, ownership="tracked"))

        merged = sup.reload()

        assert sorted(Path(r.file).name for r in merged.refused) == ["broken.yaml", "twin.yaml"]
        assert sorted(sup.daemon.jobs) == ["a", "c"]
        assert sup.daemon.jobs["a"].symbol == "btcusdt"
        assert wait_for(lambda: len(_book(sandbox, "ethusdt")) == 4)
        problems = {Path(f.file).name: f.problem for f in store.reload_failures()}
        assert "already used" in problems["twin.yaml"]
        assert set(problems) == {"broken.yaml", "twin.yaml"}

        (folder / "broken.yaml").unlink()
        (folder / "twin.yaml").unlink()
        sup.reload()
        assert store.reload_failures() == []


def test_status_shows_a_running_daemon_its_schedule_and_a_refused_reload(
    tmp_path, sandbox, job_text, spawn, daemon_env, wait_for
):
    import json

    from click.testing import CliRunner

    from rebalancer.cli.main import main

    folder = tmp_path / "jobs"
    folder.mkdir()
    a = folder / "a.yaml"
    a.write_text(job_text("a", every="2s", levels=1, ownership="tracked"))
    daemon = spawn(str(folder), "--no-watch")

    def rows() -> dict:
        result = CliRunner().invoke(main, ["status", "--json"], env=daemon_env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return {row["job"]: row for row in json.loads(result.stdout)}

    assert wait_for(lambda: (rows().get("a") or {}).get("tracked_orders") == 2, timeout=30), daemon.log
    row = rows()["a"]
    assert row["daemon"] and row["holder"] == row["daemon"]
    assert row["source"] == str(a)
    due = row["next_due"]
    last = row["last_pass"]["at"]
    assert due > last

    a.write_text(job_text("a", every="2s", levels=1, ownership="tracked") + "bogus: key\n")
    daemon.send(signal.SIGHUP)
    assert wait_for(lambda: rows()["a"]["reload_failure"] is not None, timeout=30), daemon.log
    failure = rows()["a"]["reload_failure"]
    assert "bogus" in failure["problem"] and failure["daemon"] == row["daemon"]
    assert daemon.stop() == 0
    assert rows()["a"]["daemon"] is None, "a stopped daemon schedules nothing"


def test_a_valid_file_whose_exchange_cannot_be_opened_is_refused_and_retried(tmp_path, sandbox, job_text, wait_for):
    from rebalancer.errors import ConfigError

    env = {"REBALANCER_API_KEY": sandbox.api_key, "REBALANCER_SECRET_KEY": sandbox.secret_key}
    broken = {"on": False}

    def opener(job):
        if broken["on"]:
            raise ConfigError("exchange refused the keys")
        return open_exchange(job, env)

    folder = tmp_path / "jobs"
    folder.mkdir()
    a = folder / "a.yaml"
    a.write_text(job_text("a", levels=1))
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store:
        sup = Supervisor([str(folder)], store, daemon=Daemon(store, opener=opener, stop_wait=10))
        sup.start()
        try:
            old = sup.daemon.jobs["a"]
            a.write_text(job_text("a", levels=2))
            broken["on"] = True
            merged = sup.reload()
            assert merged is not None and [r.file for r in merged.refused] == [str(a)]
            assert sup.daemon.jobs["a"] == old
            [failure] = store.reload_failures()
            assert "job a could not be started: exchange refused the keys" in failure.problem
            broken["on"] = False
            sup.reload()
            assert sup.daemon.jobs["a"] != old, "the next reload tries again"
            assert store.reload_failures() == []
        finally:
            sup.stop()


def test_reload_metrics_name_a_file_as_status_does_when_the_daemon_was_given_a_relative_path(
    tmp_path, sandbox, job_text, wait_for, monkeypatch
):
    folder = tmp_path / "jobs"
    folder.mkdir()
    a = folder / "a.yaml"
    a.write_text(job_text("a", symbol="btcusdt", levels=1))
    monkeypatch.chdir(tmp_path)
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store, supervised(store, sandbox, ["jobs"]) as sup:
        assert wait_for(lambda: len(_book(sandbox, "btcusdt")) == 2)
        a.write_text(job_text("a", symbol="btcusdt", levels=2) + "bogus: key\n")
        sup.reload()
        [failure] = store.reload_failures()
        assert failure.file == str(tmp_path / "jobs" / "a.yaml")  # what `status` prints
        assert _sample(sup, "rebalancer_reload_failures_total", Path(failure.file)) == 1
        assert _sample(sup, "rebalancer_reload_failing", Path(failure.file)) == 1
        assert _sample(sup, "rebalancer_reload_failing", Path("jobs/a.yaml")) is None
        a.write_text(job_text("a", symbol="btcusdt", levels=2))
        sup.reload()
        assert store.reload_failures() == []
        assert _sample(sup, "rebalancer_reload_failing", Path(failure.file)) == 0
