"""`rebalancer sandbox`: serves the persisted world; a client that follows the API documentation can trade on it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import requests


def _signed(params: dict[str, str], api_key: str, secret: str) -> dict[str, str]:
    """Signing exactly as the API documentation says: sorted name+value pairs, then the secret, MD5 lower hex."""
    full = {**params, "api_key": api_key, "time": str(int(time.time() * 1000))}
    text = "".join(f"{k}{full[k]}" for k in sorted(full)) + secret
    return {**full, "sign": hashlib.md5(text.encode()).hexdigest()}


def test_the_sandbox_command_serves_a_documented_client_and_saves_its_world(tmp_path: Path) -> None:
    env = {**os.environ, "REBALANCER_STATE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "rebalancer", "sandbox", "--port", "0", "--seed", "7", "--reset"]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        _trade(process)
    assert process.returncode == 0
    assert (tmp_path / "sandbox-world.json").exists()


def _trade(process: subprocess.Popen[str]) -> None:
    try:
        assert process.stdout is not None
        lines = dict(process.stdout.readline().strip().split(": ", 1) for _ in range(3))
        url, key, secret = lines["url"], lines["api_key"], lines["secret_key"]
        assert url.startswith("http://127.0.0.1:")

        symbols = requests.get(f"{url}/open/api/common/symbols", timeout=5).json()
        assert str(symbols["code"]) == "0"
        assert "btcusdt" in {s["symbol"] for s in symbols["data"]}
        ticker = requests.get(f"{url}/open/api/get_ticker", params={"symbol": "btcusdt"}, timeout=5).json()["data"]
        bid = Decimal(str(ticker["buy"]))

        place = [
            {
                "side": "BUY",
                "type": "1",
                "volume": "0.0100",
                "price": str((bid * (Decimal("0.9") - Decimal(i) / 1000)).quantize(Decimal("0.01"))),
            }
            for i in range(25)
        ]
        body = _signed({"symbol": "btcusdt", "mass_place": json.dumps(place, separators=(",", ":"))}, key, secret)
        placed = requests.post(f"{url}/open/api/mass_replaceV2", data=body, timeout=5).json()
        assert str(placed["code"]) == "0", placed
        ids = [i for group in placed["data"]["mass_place"] if str(group["code"]) == "0" for i in group["order_id"]]
        assert len(ids) == 25

        seen: list[int] = []
        for page in (1, 2, 3):
            query = _signed({"symbol": "btcusdt", "page": str(page), "pageSize": "10"}, key, secret)
            data = requests.get(f"{url}/open/api/v2/new_order", params=query, timeout=5).json()["data"]
            assert int(data["count"]) == 25
            seen += [int(o["id"]) for o in data["resultList"]]
        assert sorted(seen) == sorted(int(i) for i in ids)

        body = _signed({"symbol": "btcusdt", "mass_cancel": json.dumps([int(i) for i in ids])}, key, secret)
        cancelled = requests.post(f"{url}/open/api/mass_replaceV2", data=body, timeout=5).json()
        assert str(cancelled["code"]) == "0"
        query = _signed({"symbol": "btcusdt", "page": "1", "pageSize": "10"}, key, secret)
        assert int(requests.get(f"{url}/open/api/v2/new_order", params=query, timeout=5).json()["data"]["count"]) == 0
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)


def test_the_sandbox_command_serves_under_a_prefix_and_can_require_hmac(tmp_path: Path) -> None:
    from rebalancer.exchange.client import OpenApiClient
    from rebalancer.exchange.profile import ExchangeProfile
    from rebalancer.exchange.signing import SignMethod

    env = {**os.environ, "REBALANCER_STATE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "rebalancer", "sandbox", "--port", "0", "--reset"]
    command += ["--prefix", "/exchange-open-api", "--sign", "hmac-sha256"]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        try:
            assert process.stdout is not None
            lines = dict(process.stdout.readline().strip().split(": ", 1) for _ in range(3))
            url, key, secret = lines["url"], lines["api_key"], lines["secret_key"]
            assert url.endswith("/exchange-open-api")
            root = url.removesuffix("/exchange-open-api")
            assert requests.get(f"{root}/open/api/common/symbols", timeout=5).status_code == 404
            md5 = _signed({}, key, secret)
            assert requests.get(f"{url}/open/api/user/account", params=md5, timeout=5).json()["code"] == "100005"
            profile = ExchangeProfile(sign=SignMethod.HMAC_SHA256)
            with OpenApiClient(url, key, secret, profile) as client:
                assert client.balances().available("usdt") > 0
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(30)
    assert process.returncode == 0


def test_the_sandbox_command_refuses_a_malformed_prefix(tmp_path: Path) -> None:
    env = {**os.environ, "REBALANCER_STATE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "rebalancer", "sandbox", "--port", "0", "--prefix", "no-slash"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("Error:") and "prefix" in done.stderr
    assert "Traceback" not in done.stderr
