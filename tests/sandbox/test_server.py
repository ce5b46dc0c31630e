"""Serving: the threaded server in-process, saving the world, and serve_forever in a child process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from rebalancer.sandbox import world as worlds
from rebalancer.sandbox.engine import DEMO_API_KEY, Engine
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.server import MAX_KEPT_BODY, SandboxServer

SERVE = """
import sys
from rebalancer.sandbox.engine import Engine
from rebalancer.sandbox.server import serve_forever
serve_forever(Engine.create(seed=5, clock="manual"), "127.0.0.1", 0,
              lambda url: print("url:", url, flush=True), save_path=sys.argv[1])
"""


def test_server_context_manager_binds_a_free_loopback_port() -> None:
    with SandboxServer(Engine.create(clock="manual")) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert not server.url.endswith(":0")
        body = requests.get(server.url + "/open/api/common/symbols", timeout=10).json()
        assert body["code"] == "0"
        url = server.url
    try:
        requests.get(url + "/open/api/common/symbols", timeout=2)
    except requests.ConnectionError:
        pass
    else:
        raise AssertionError("the server still answers after stop()")


def test_reset_serves_a_new_world() -> None:
    with SandboxServer(Engine.create(seed=1, clock="manual"), Faults(rate_limits=False)) as server:
        fresh = Engine.create(seed=2, clock="manual")
        fresh.set_price("btcusdt", "12345")
        server.reset(fresh)
        assert server.engine is fresh
        ticker = requests.get(server.url + "/open/api/get_ticker", params={"symbol": "btcusdt"}, timeout=10)
        assert ticker.json()["data"]["last"] == "12345.00"


def test_serve_forever_prints_its_url_and_saves_on_interrupt(tmp_path: Path) -> None:
    world = tmp_path / "state" / "sandbox-world.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, "-c", SERVE, str(world)], stdout=subprocess.PIPE, text=True, env=env
    ) as child:
        try:
            assert child.stdout is not None
            line = child.stdout.readline().strip()
            assert line.startswith("url: http://127.0.0.1:")
            url = line.split(" ", 1)[1]
            requests.post(url + "/sandbox/advance", params={"seconds": "3"}, timeout=10).raise_for_status()
            child.send_signal(signal.SIGINT)
            assert child.wait(timeout=30) == 0
        finally:
            if child.poll() is None:
                child.kill()
    saved = json.loads(world.read_text())
    expected = Engine.create(seed=5, clock="manual")
    expected.advance(3)
    assert saved["symbols"] == worlds.dump(expected)["symbols"]
    assert worlds.load(world).balances(DEMO_API_KEY) == expected.balances(DEMO_API_KEY)


def test_one_session_keeps_one_connection_across_requests_and_bodies() -> None:
    with SandboxServer(Engine.create(clock="manual"), Faults(rate_limits=False)) as server, requests.Session() as s:
        ticker = server.url + "/open/api/get_ticker"
        first = s.get(ticker, params={"symbol": "btcusdt"}, timeout=10)
        assert first.headers.get("Connection") != "close" and "Content-Length" in first.headers
        # A body the app never reads (a GET's, a POST to a GET route) is read past, not taken for the next request.
        assert s.request("GET", ticker, params={"symbol": "btcusdt"}, data={"x": "1" * 5000}, timeout=10).ok
        assert s.post(ticker, data={"symbol": "btcusdt"}, timeout=10).status_code == 405
        assert s.get(server.url + "/open/api/nowhere", timeout=10).status_code == 404
        assert s.get(ticker, params={"symbol": "btcusdt"}, timeout=10).json()["code"] == "0"
        assert server.connections_accepted == 1


def test_a_client_asking_to_close_gets_a_new_connection_each_time() -> None:
    with SandboxServer(Engine.create(clock="manual"), Faults(rate_limits=False)) as server, requests.Session() as s:
        for _ in range(2):
            answer = s.get(server.url + "/open/api/common/symbols", headers={"Connection": "close"}, timeout=10)
            assert answer.headers["Connection"] == "close"
        assert server.connections_accepted == 2


def test_stop_ends_the_connections_kept_open() -> None:
    server = SandboxServer(Engine.create(clock="manual")).start()
    with requests.Session() as s:
        assert s.get(server.url + "/open/api/common/symbols", timeout=10).ok
        url = server.url
        server.stop()  # returns although the session still holds its connection open
        with pytest.raises(requests.ConnectionError):  # the kept connection is not served after stop()
            s.get(url + "/open/api/common/symbols", timeout=5)


def test_faults_on_a_kept_connection(sandbox: Any, api: Any) -> None:
    ticker = {"symbol": "btcusdt"}
    assert api.get("/open/api/get_ticker", ticker).ok
    before = sandbox.server.connections_accepted
    sandbox.faults.latency = 0.05
    assert api.get("/open/api/get_ticker", ticker).json()["code"] == "0"
    sandbox.faults.latency, sandbox.faults.error_500 = 0.0, 1.0
    assert api.get("/open/api/get_ticker", ticker).status_code == 500
    assert sandbox.server.connections_accepted == before
    sandbox.faults.error_500, sandbox.faults.drop_after_apply, sandbox.faults.drop_mode = 0.0, 1.0, "close"
    with pytest.raises(requests.ConnectionError):
        api.replace("btcusdt", place=[api.item("BUY", "29000.00", "0.0100")])
    # The dropped connection is gone; the session's next request opens a new one and is answered.
    assert api.get("/open/api/get_ticker", ticker).json()["code"] == "0"
    assert sandbox.server.connections_accepted == before + 1


def test_a_large_or_chunked_request_body_closes_the_connection_after_its_answer() -> None:
    with SandboxServer(Engine.create(clock="manual"), Faults(rate_limits=False)) as server, requests.Session() as s:
        ticker = server.url + "/open/api/get_ticker"
        large = s.post(ticker, data=b"x" * (MAX_KEPT_BODY + 1), timeout=30)
        assert large.status_code == 405 and large.headers["Connection"] == "close"
        chunked = s.post(ticker, data=iter([b"symbol=", b"btcusdt"]), timeout=30)  # a generator is sent chunked
        assert chunked.status_code == 405 and chunked.headers["Connection"] == "close"
        assert s.get(ticker, params={"symbol": "btcusdt"}, timeout=10).json()["code"] == "0"
        assert server.connections_accepted == 3
