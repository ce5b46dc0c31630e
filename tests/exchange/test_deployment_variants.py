"""Deployments unlike the template: order rows without ``status`` (the template docs' own ``order_info`` example),
whose fills are still learnt from the volumes; and deployments documenting only the old open-order path."""

from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest

from rebalancer.engine.runner import run_pass
from rebalancer.errors import RequestError
from rebalancer.exchange.client import OpenApiClient
from rebalancer.exchange.marketdata import DeploymentData
from rebalancer.models import Side
from rebalancer.state.store import StateStore
from tests.exchange.hostile import http_answer, serving
from tests.reliability.kit import fast_client, load
from tests.sandbox.conftest import Api

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def test_fills_of_an_order_gone_from_the_book_are_learnt_without_a_status(sandbox, tmp_path) -> None:
    sandbox.faults.order_info_without_status = True
    job = load(tmp_path, "statusless", sandbox.url, ownership="tracked")
    now = [T0]
    with (
        StateStore(f"sqlite:///{tmp_path / 's.db'}") as store,
        fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client,
    ):
        assert run_pass(job, client, store, apply=True, mode="run", wall=lambda: now[0]).result == "ok"
        sell = min(
            (o for o in sandbox.engine.open_orders(sandbox.api_key, job.symbol) if o.side is Side.SELL),
            key=lambda o: o.price,
        )
        sandbox.engine.fill(int(sell.id))  # all of it: the order leaves the book, only order_info can tell
        now[0] = T0 + timedelta(seconds=30)
        second = run_pass(job, client, store, apply=True, mode="run", wall=lambda: now[0])
        assert [(f.order_id, f.side, f.volume) for f in second.fills] == [(sell.id, Side.SELL, sell.volume)]
        info = sandbox.server.app.request_log()
        assert any(entry["path"] == "/open/api/order_info" for entry in info)
    api = Api(sandbox.url, sandbox.api_key, sandbox.secret_key)
    row = api.sget("/open/api/order_info", {"symbol": job.symbol, "order_id": sell.id})["data"]["order_info"]
    assert "status" not in row and row["deal_volume"] == row["volume"], "the answer the pass learnt from"


def test_the_old_open_order_path_is_found_out_once_per_deployment() -> None:
    asked: list[str] = []

    def respond(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        path = request.split(b" ")[1].split(b"?")[0].decode()
        asked.append(path)
        if path == "/open/api/new_order":
            row = {"id": 7, "side": "BUY", "price": "1.00", "volume": "1", "status": 1}
            conn.sendall(http_answer(json.dumps({"code": "0", "data": {"count": 1, "resultList": [row]}}).encode()))
        else:
            conn.sendall(http_answer(b"not here", status="404 Not Found"))

    with serving(respond) as server:
        market = DeploymentData(server.url)
        for _ in range(2):
            with OpenApiClient(server.url, "key", "secret", market=market) as client:
                assert [o.id for o in client.open_orders("btcusdt")] == ["7"]
    assert asked == ["/open/api/v2/new_order", "/open/api/new_order", "/open/api/new_order"]


def test_a_deployment_serving_neither_path_reports_the_v2_one() -> None:
    def respond(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        conn.sendall(http_answer(b"not here", status="404 Not Found"))

    with serving(respond) as server, OpenApiClient(server.url, "key", "secret") as client:
        with pytest.raises(RequestError, match=r"reading open orders \(/open/api/v2/new_order\): HTTP 404"):
            client.open_orders("btcusdt")
        with pytest.raises(RequestError, match=r"/open/api/v2/new_order"):
            client.open_orders("btcusdt")  # nothing was learnt: the v2 path is asked again
