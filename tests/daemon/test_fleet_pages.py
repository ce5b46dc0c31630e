"""``run --workers N``: the parent serves ``/`` and ``/jobs/NAME`` of every worker's jobs; ``--workers auto``."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from rebalancer.cli.main import main
from rebalancer.daemon.fleet import share_of, worker_count
from rebalancer.daemon.fleet_pages import FleetPages, merged_rows, worker_rows
from rebalancer.defaults import FLEET_ROWS_LIMIT, JOBS_PER_WORKER
from rebalancer.pictures import status_page
from rebalancer.scheduler.pages import rows_json
from tests.daemon.test_fleet import _free_port, _get, _worker_pids


@pytest.mark.parametrize(
    ("jobs", "cores", "workers"),
    [
        (0, 8, 1),
        (1, 8, 1),
        (JOBS_PER_WORKER, 8, 1),
        (JOBS_PER_WORKER + 1, 8, 2),
        (3 * JOBS_PER_WORKER, 2, 2),
        (3 * JOBS_PER_WORKER, 1, 1),
        (10_000, 4, 4),
        (100_000, 128, 64),
        (5, 0, 1),
    ],
)
def test_auto_is_one_worker_per_so_many_jobs_up_to_the_cores(jobs: int, cores: int, workers: int) -> None:
    assert worker_count(jobs, cores) == workers


def _row(job: str | None, source: str | None = None, **more: Any) -> dict[str, Any]:
    return {"job": job, "source": source, "paused": False, "last_pass": None, "reload_failure": None, **more}


def test_the_index_keeps_each_job_from_its_worker_sorted_by_name_and_refused_files_once() -> None:
    def owner(name: str) -> int:
        return 0 if name < "m" else 1

    refused = _row(None, "/jobs/bad.yaml", reload_failure={"problem": "bad"})
    answers = [
        ("w0", [_row("b"), _row("a"), _row("z", tracked_orders=9), refused]),
        ("w1", [_row("a", tracked_orders=9), _row("z"), _row("q"), refused]),
        None,
    ]
    rows, daemons, notes = merged_rows(answers, owner)
    assert [row["job"] for row in rows] == ["a", "b", "q", "z", None]
    assert all(row.get("tracked_orders") is None for row in rows)
    assert daemons == ["w0", "w1"]
    assert notes == ["worker 2 did not answer: its jobs are left out of this page"]


def _answer(document: object) -> tuple[int, bytes]:
    return 200, json.dumps(document).encode()


GARBAGE = [
    None,
    (500, b"{}"),
    (200, b"not json"),
    (200, b"\xff\xfe"),
    (200, b"[" * 100_000),
    _answer([]),
    _answer({"rows": []}),
    _answer({"daemon": 3, "rows": []}),
    _answer({"daemon": "w", "rows": {}}),
    _answer({"daemon": "w", "rows": ["a"]}),
    _answer({"daemon": "w", "rows": [_row(7)]}),
    _answer({"daemon": "w", "rows": [{"source": None, "paused": False}]}),
    _answer({"daemon": "w", "rows": [_row("a", source=["x"])]}),
    _answer({"daemon": "w", "rows": [_row("a", paused="yes")]}),
    _answer({"daemon": "w", "rows": [_row("a", last_pass="ok")]}),
    _answer({"daemon": "w", "rows": [_row("a", last_pass={"result": "splendid"})]}),
    _answer({"daemon": "w", "rows": [_row("a", last_error=[1])]}),
    _answer({"daemon": "w", "rows": [_row("a", market_data="stream")]}),
    _answer({"daemon": "w", "rows": [_row("a", reload_failure={"problem": 3})]}),
]


@pytest.mark.parametrize("answer", GARBAGE)
def test_a_worker_answer_of_the_wrong_shape_gives_no_rows(answer: tuple[int, bytes] | None) -> None:
    assert worker_rows(answer) is None


def test_the_rows_a_worker_writes_read_back_and_carry_no_markup() -> None:
    rows = [_row("<b>&", last_pass={"result": "ok", "at": "now"}, paused_by="file")]
    body = rows_json("host:1:ab", rows)
    assert b"<" not in body and b">" not in body and b"&" not in body
    assert worker_rows((200, body)) == ("host:1:ab", rows)


class _Liar(BaseHTTPRequestHandler):
    """A worker that answers every path with the body set on its server."""

    def do_GET(self) -> None:
        body: bytes = self.server.body  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def liar() -> Iterator[Callable[[bytes], str]]:
    """Loopback HTTP servers, each answering every path with a given body; the URL of a new one."""
    servers: list[ThreadingHTTPServer] = []

    def answering(body: bytes) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Liar)
        server.body = body  # type: ignore[attr-defined]
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield answering
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "body",
    [b"<html>", b'{"daemon": "w", "rows": [{"job": "a", "paused": 1}]}', b" " * (FLEET_ROWS_LIMIT + 1)],
    ids=["html", "bad-row", "too-long"],
)
def test_the_parent_leaves_out_a_worker_that_answers_garbage_and_says_so(liar, body: bytes) -> None:
    urls = [liar(body), liar(rows_json("w1", [_row("b")]))]
    pages = FleetPages(lambda: urls, lambda name: 1 if name == "b" else 0)
    status, page = pages.respond("/") or ("", b"")
    assert status == "200 OK"
    assert b"worker 0 did not answer" in page and b"worker 1 did not answer" not in page
    assert b"data-job='b'" in page and b"daemon w1" in page
    status, page = pages.respond("/jobs/a") or ("", b"")
    passed_on = len(body) <= FLEET_ROWS_LIMIT  # a job page is passed on as it came, unless it is too long
    assert status == ("200 OK" if passed_on else "503 Service Unavailable")


def _listed(url: str) -> set[str]:
    answer = _get(url)
    if answer is None or answer.status_code != 200:
        return set()
    return {part.split("'")[0] for part in answer.text.split("data-job='")[1:]}


def test_the_parent_serves_every_workers_jobs_on_its_pages(tmp_path, job_text, spawn, wait_for):
    folder = tmp_path / "jobs"
    folder.mkdir()
    names = [f"p{i}" for i in range(5)]
    for name in names:
        (folder / f"{name}.yaml").write_text(job_text(name, levels=1, ownership="tracked"))
    assert {share_of(name, 2) for name in names} == {0, 1}, "the test needs jobs in both workers"
    http = f"127.0.0.1:{_free_port()}"
    daemon = spawn(str(folder), "--workers", "2", "--http", http, "--no-watch")
    base = f"http://{http}"
    assert wait_for(lambda: (r := _get(f"{base}/readyz")) is not None and r.status_code == 200, timeout=60)
    assert wait_for(lambda: _listed(f"{base}/") == set(names), timeout=30)
    index = requests.get(f"{base}/", timeout=10).text
    assert "5 job(s)" in index and "did not answer" not in index
    for share in (0, 1):
        name = next(name for name in names if share_of(name, 2) == share)
        page = requests.get(f"{base}/jobs/{name}", timeout=10)
        assert page.status_code == 200
        assert f"<h1>{name}" in page.text or f">{name}<" in page.text
    unknown = requests.get(f"{base}/jobs/nope", timeout=10)
    assert unknown.status_code == 404
    assert unknown.text == status_page.not_found_page("nope")

    (stopped,) = _worker_pids(daemon.process.pid)  # share 1's: the parent runs share 0 itself
    try:
        daemon_of = {name: share_of(name, 2) for name in names}
        os.kill(stopped, signal.SIGSTOP)  # a worker that does not answer: its jobs are left out, the page says so
        quiet = requests.get(f"{base}/", timeout=30)
        assert quiet.status_code == 200
        assert "worker 1 did not answer" in quiet.text
        assert _listed(f"{base}/") == {name for name, share in daemon_of.items() if share == 0}
        silent = next(name for name, share in daemon_of.items() if share == 1)
        assert requests.get(f"{base}/jobs/{silent}", timeout=30).status_code == 503
    finally:
        os.kill(stopped, signal.SIGCONT)
    assert daemon.stop(signal.SIGTERM) == 0
    assert "Traceback" not in daemon.log


def test_workers_auto_with_once_runs_here(tmp_path, job_text, daemon_env, sandbox):
    job = tmp_path / "o.yaml"
    job.write_text(job_text("o", levels=1))
    result = CliRunner().invoke(main, ["run", str(job), "--workers", "auto", "--once"], env=daemon_env)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("value", ["0", "65", "two", "-1", "auto2"])
def test_a_bad_workers_value_is_one_error_line(tmp_path, job_text, daemon_env, sandbox, value):
    job = tmp_path / "o.yaml"
    job.write_text(job_text("o"))
    result = CliRunner().invoke(main, ["run", str(job), "--workers", value], env=daemon_env)
    assert result.exit_code == 1, result.output
    assert [line for line in result.stderr.splitlines() if line.startswith("Error:")] != []
    assert "Traceback" not in result.output
    assert sandbox.engine.open_orders(sandbox.api_key, "btcusdt") == ()
