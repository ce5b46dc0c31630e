"""The daemon's ``--http`` pages in a real headless Chromium: ``/`` lists every job, ``/jobs/NAME`` draws its ladder.

An in-process daemon reconciles two jobs (a 20-level ladder and a small one) against the sandbox over real HTTP;
the pages are served by the same server as ``/metrics``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

from rebalancer.daemon.scheduler import Daemon
from rebalancer.engine.connect import open_exchange
from rebalancer.jobfile.load import load_job
from rebalancer.scheduler.metrics import HealthServer
from rebalancer.scheduler.pages import StatusPages
from rebalancer.state.store import StateStore
from tests.jobtext import ladder_job


@contextlib.contextmanager
def serving(tmp_path: Path, sandbox: Any, levels: dict[str, int]) -> Iterator[tuple[Daemon, str]]:
    """A daemon with one job per entry of ``levels`` (levels per side), and the URL of its HTTP server."""
    jobs = []
    for name, n in levels.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(ladder_job(name, sandbox.url, every="300ms", levels=n, ownership="tracked", limits="{}"))
        jobs.append(load_job(path))
    env = {"REBALANCER_API_KEY": sandbox.api_key, "REBALANCER_SECRET_KEY": sandbox.secret_key}
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store:
        daemon = Daemon(store, opener=lambda job: open_exchange(job, env), stop_wait=10)
        daemon.start(jobs)
        server = HealthServer(daemon.metrics, "127.0.0.1", 0, daemon.ready, StatusPages(daemon, daemon.holder).respond)
        server.start()
        try:
            yield daemon, server.url
        finally:
            server.stop()
            daemon.stop()


def test_the_job_list_and_a_twenty_level_ladder(
    page: Any, sandbox: Any, tmp_path: Path, wait_for: Callable[..., bool]
) -> None:
    with serving(tmp_path, sandbox, {"wide": 10, "narrow": 2}) as (daemon, url):
        assert wait_for(daemon.ready)
        assert wait_for(lambda: len(sandbox.engine.open_orders(sandbox.api_key, "btcusdt")) == 24)
        assert wait_for(lambda: (daemon.run_pass_now("wide") or daemon).result == "no_changes")  # type: ignore[union-attr]
        index = requests.get(f"{url}/", timeout=10)
        assert index.status_code == 200 and index.headers["Content-Type"].startswith("text/html")
        assert '<meta http-equiv="refresh"' in index.text and "<script" not in index.text

        page.goto(f"{url}/")
        rows = page.locator("table.jobs tr.job")
        assert sorted(r.get_attribute("data-job") for r in rows.all()) == ["narrow", "wide"]
        wide = page.locator("tr.job[data-job='wide']")
        assert wide.get_attribute("data-state") == "running"
        assert wide.locator("td.orders").inner_text() == "20"
        assert wide.locator("td.result").inner_text() in ("ok", "no_changes")
        page.screenshot(path=str(tmp_path / "status.png"), full_page=True)

        page.click("a[href='/jobs/wide']")
        page.wait_for_selector("svg.ladder")
        assert page.locator("svg.ladder g.row.keep").count() == 20
        assert page.locator("svg.ladder g.row.keep.buy").count() == 10
        assert page.locator("svg.ladder rect.band").count() == 20
        assert page.locator("svg.ladder g.marker.reference").count() == 1
        assert page.locator("table.passes tr.pass").count() >= 2
        assert "No changes. Open orders match the target ladder." in page.locator(".summary").inner_text()
        page.screenshot(path=str(tmp_path / "job.png"), full_page=True)


def test_an_unknown_job_page_is_a_404_page(sandbox: Any, tmp_path: Path, wait_for: Callable[..., bool]) -> None:
    with serving(tmp_path, sandbox, {"solo": 1}) as (daemon, url):
        assert wait_for(daemon.ready)
        missing = requests.get(f"{url}/jobs/ghost", timeout=10)
        assert missing.status_code == 404 and "No job named ghost" in missing.text
        assert requests.get(f"{url}/metrics", timeout=10).status_code == 200
