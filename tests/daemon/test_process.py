"""`rebalancer run` as a real process: signals, reloads, file watching, --once, and a clean exit."""

from __future__ import annotations

import signal


def _book(sandbox, symbol: str = "btcusdt"):
    return sandbox.engine.open_orders(sandbox.api_key, symbol)


def test_sigterm_mid_pass_exits_0_without_a_half_sent_batch(tmp_path, sandbox, job_text, spawn, wait_for):
    job = tmp_path / "t.yaml"
    job.write_text(job_text("t", levels=5))
    sandbox.faults.latency = 0.5
    daemon = spawn(str(job), "--no-watch")
    assert wait_for(lambda: "daemon started" in daemon.log, timeout=30)
    assert daemon.stop(signal.SIGTERM) == 0
    assert "daemon stopped" in daemon.log
    assert len(_book(sandbox)) in (0, 10)
    assert "Traceback" not in daemon.log


def test_on_stop_cancel_empties_the_book_on_sigint(tmp_path, sandbox, job_text, spawn, wait_for):
    job = tmp_path / "c.yaml"
    job.write_text(job_text("c", on_stop="cancel"))
    daemon = spawn(str(job))
    assert wait_for(lambda: len(_book(sandbox)) == 6, timeout=30)
    assert daemon.stop(signal.SIGINT) == 0
    assert _book(sandbox) == ()


def test_sighup_reloads_a_changed_file_and_keeps_the_old_job_when_broken(tmp_path, sandbox, job_text, spawn, wait_for):
    job = tmp_path / "h.yaml"
    job.write_text(job_text("h", levels=2))
    daemon = spawn(str(job), "--no-watch")
    assert wait_for(lambda: len(_book(sandbox)) == 4, timeout=30)
    job.write_text(job_text("h", levels=4))
    daemon.send(signal.SIGHUP)
    assert wait_for(lambda: len(_book(sandbox)) == 8, timeout=30)
    job.write_text(job_text("h", levels=4) + "bogus: key\n")
    daemon.send(signal.SIGHUP)
    assert wait_for(lambda: "reload refused" in daemon.log, timeout=30)
    sandbox.engine.cancel_all(sandbox.api_key, "btcusdt")
    assert wait_for(lambda: len(_book(sandbox)) == 8, timeout=30), "the old job must keep running"
    assert daemon.stop() == 0


def test_a_changed_file_is_picked_up_without_a_signal(tmp_path, sandbox, job_text, spawn, wait_for):
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "w.yaml").write_text(job_text("w", levels=1))
    daemon = spawn(str(folder))
    assert wait_for(lambda: len(_book(sandbox)) == 2, timeout=30)
    (folder / "w.yaml").write_text(job_text("w", levels=3))
    assert wait_for(lambda: len(_book(sandbox)) == 6, timeout=30)
    assert daemon.stop() == 0


def test_an_invalid_job_at_start_names_the_file_and_nothing_starts(tmp_path, sandbox, job_text, spawn):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(job_text("good"))
    bad.write_text(job_text("bad").replace("levels: 3", "levels: 0", 1))
    daemon = spawn(str(good), str(bad))
    assert daemon.process.wait(30) == 1
    assert str(bad) in daemon.log
    assert "Traceback" not in daemon.log
    assert _book(sandbox) == ()


def test_once_exits_0_after_every_job_ran(tmp_path, sandbox, job_text, spawn):
    job = tmp_path / "o.yaml"
    job.write_text(job_text("o"))
    daemon = spawn(str(job), "--once", "--log-format", "json")
    assert daemon.process.wait(30) == 0
    assert len(_book(sandbox)) == 6
    assert '"msg": "pass"' in daemon.log
    assert sandbox.secret_key not in daemon.log


def test_a_control_character_in_a_reloaded_file_keeps_every_job_running(tmp_path, sandbox, job_text, spawn, wait_for):
    broken, other = tmp_path / "x.yaml", tmp_path / "y.yaml"
    broken.write_text(job_text("x", levels=1))
    other.write_text(job_text("y", symbol="ethusdt", levels=1, size="0.5"))
    daemon = spawn(str(broken), str(other), "--no-watch")
    assert wait_for(lambda: len(_book(sandbox)) == 2 and len(_book(sandbox, "ethusdt")) == 2, timeout=30)
    broken.write_text(job_text("x", levels=1).replace("reference: mid", "reference: m\x1bid"))
    daemon.send(signal.SIGHUP)
    assert wait_for(lambda: "reload refused" in daemon.log, timeout=30)
    assert f"{broken}:6:13: character U+001B (a control character) is not allowed in a job file" in daemon.log
    sandbox.engine.cancel_all(sandbox.api_key, "btcusdt")
    sandbox.engine.cancel_all(sandbox.api_key, "ethusdt")
    assert wait_for(lambda: len(_book(sandbox)) == 2 and len(_book(sandbox, "ethusdt")) == 2, timeout=30), (
        "both jobs must keep running on their old versions"
    )
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.log
