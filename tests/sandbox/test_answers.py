"""How /open/api requests are read and answered: which value of a parameter sent twice counts, the answer's
headers, and the CPU benchmark's smoke profile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from tests.sandbox.conftest import Api

BENCH = Path(__file__).resolve().parents[2] / "bench" / "sandbox_cpu.py"


def test_a_parameter_in_the_query_and_the_form_counts_as_in_the_query(sandbox: Any, api: Api) -> None:
    signed = api.signed_params({"symbol": "btcusdt", "order_id": "1"})
    form = {**signed, "symbol": "nope", "order_id": "2"}
    answer = requests.post(
        f"{sandbox.url}/open/api/cancel_order", params={"symbol": "btcusdt", "order_id": "1"}, data=form, timeout=10
    )
    # Signed over the query's values: the signature holds and the order (unknown) is looked up on btcusdt.
    assert answer.json()["code"] == "22"
    logged = sandbox.server.app.request_log()[-1]["params"]
    assert logged["symbol"] == "btcusdt" and logged["order_id"] == "1" and logged["sign"] == signed["sign"]


def test_a_get_reads_no_form(sandbox: Any, api: Api) -> None:
    params = api.signed_params({"symbol": "btcusdt"})
    answer = requests.get(f"{sandbox.url}/open/api/v2/new_order", data={"pageSize": "x"}, params=params, timeout=10)
    assert answer.json()["code"] == "0"  # the form's pageSize, not a positive integer, was not read


def test_answers_say_their_type_and_length(sandbox: Any) -> None:
    for path, status, reason in [
        ("/open/api/get_ticker?symbol=btcusdt", 200, "OK"),
        ("/open/api/nothing", 404, "NOT FOUND"),
    ]:
        answer = requests.get(sandbox.url + path, timeout=10)
        assert (answer.status_code, answer.reason) == (status, reason)
        assert answer.headers["Content-Type"] == "application/json"
        assert int(answer.headers["Content-Length"]) == len(answer.content)
        assert answer.headers["Date"].endswith(" GMT")
        assert json.loads(answer.content)["code"] == ("0" if status == 200 else "404")


def test_cpu_benchmark_quick_profile_runs(tmp_path: Path) -> None:
    out = tmp_path / "cpu.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--out", str(out)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())["median_cpu_us_per_request"]
    assert set(figures) == {"this"} and figures["this"] >= 0
