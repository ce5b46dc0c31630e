"""`rebalancer record` end to end: a child process recording the sandbox's stream over loopback, stopped by SIGINT;
`--for` with the embedded sandbox; the errors (bad URL, unreachable stream, refused channel, bad arguments)."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import zlib
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from rebalancer.cli.main import main
from rebalancer.models import Side
from rebalancer.sandbox.engine import DEMO_API_KEY
from rebalancer.stream.frames import Depth, SubAck, Trades, decode, parse_message
from tests.stream.conftest import Streamed, wait_for

D = Decimal


def _lines(path: Path) -> list[dict[str, object]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:  # a whole gzip file, or this raises
        return [json.loads(line, parse_float=D) for line in handle]


def _partial_text(path: Path) -> str:
    """What a running recording has flushed so far (a gzip stream without its end yet)."""
    data = path.read_bytes() if path.exists() else b""
    return zlib.decompressobj(wbits=31).decompress(data).decode("utf-8", "replace")


def test_record_a_stream_url_until_sigint(streamed: Streamed, tmp_path: Path) -> None:
    out = tmp_path / "btc.jsonl.gz"
    command = [sys.executable, "-m", "rebalancer", "record", "--stream", streamed.stream_url, "--url", streamed.url]
    command += ["--symbol", "btcusdt", "--out", str(out)]
    env = {**os.environ, "REBALANCER_STATE_DIR": str(tmp_path / "state")}
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as child:
        try:
            stream = streamed.server.stream
            assert stream is not None
            wait_for(lambda: any(len(c) == 2 for c in stream.status()["clients"]), "the recorder subscribed")
            streamed.control("stream/garbage", kind="json")  # counted by the client, never recorded
            streamed.control("stream/garbage", kind="bomb")
            streamed.control("price", symbol="btcusdt", price="31000.10")
            price = D("30900.00")
            order_id = streamed.engine.place(DEMO_API_KEY, "btcusdt", Side.BUY, price, D("0.0100"))
            streamed.engine.fill(order_id)
            wait_for(lambda: '"price":30900.00,"vol":0.0100' in _partial_text(out), "the fill recorded and flushed")
        finally:
            child.send_signal(signal.SIGINT)
            _, stderr = child.communicate(timeout=60)
    assert child.returncode == 0, stderr
    assert "Recorded" in stderr and "frames" in stderr

    lines = _lines(out)
    assert lines[0]["rules"] == {"btcusdt": {"tick": "0.01", "lot": "0.0001"}}
    assert all(set(line) == {"t", "frame"} and isinstance(line["t"], int) for line in lines[1:])
    messages = [parse_message(decode(json.dumps(line["frame"], default=str), max_bytes=1 << 20)) for line in lines[1:]]
    acks = [m for m in messages if isinstance(m, SubAck)]
    assert {a.channel for a in acks} == {"market_btcusdt_depth_step0", "market_btcusdt_trade_ticker"}
    assert any(isinstance(m, Depth) and m.asks and m.asks[0][0] > D("31000.10") for m in messages)
    trades = [t for m in messages if isinstance(m, Trades) for t in m.trades]
    assert [(t.side, t.price, t.volume) for t in trades] == [(Side.SELL, price, D("0.0100"))]
    assert not any("ping" in line["frame"] for line in lines[1:])  # type: ignore[operator]
    raw = gzip.decompress(out.read_bytes()).decode()
    assert '"price":30900.00,"vol":0.0100' in raw  # numbers exactly as sent, trailing zeros kept


def test_record_the_embedded_sandbox_for_a_while(tmp_path: Path) -> None:
    out = tmp_path / "walk.jsonl.gz"
    args = ["--state-dir", str(tmp_path / "state"), "record", "--stream", "sandbox", "--symbol", "ETHUSDT"]
    result = CliRunner().invoke(main, [*args, "--symbol", "btcusdt", "--out", str(out), "--for", "2s"])
    assert result.exit_code == 0, result.output
    lines = _lines(out)
    assert set(lines[0]["rules"]) == {"btcusdt", "ethusdt"}  # type: ignore[arg-type]
    channels = {line["frame"]["channel"] for line in lines[1:]}  # type: ignore[index]
    assert {"market_ethusdt_depth_step0", "market_btcusdt_depth_step0"} <= channels
    assert 0 < lines[1]["t"] - lines[0]["t"] < 60_000  # type: ignore[operator]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--stream", "http://127.0.0.1/x"], "--stream: 'http://127.0.0.1/x' is not a websocket URL"),
        (["--stream", "ws://ws.example.com/kline-api/ws"], "--stream: plain ws:// to a host other than this machine"),
        (["--stream", "sandbox", "--url", "http://127.0.0.1:1"], "--url: the sandbox's own REST URL"),
        (["--stream", "ws://127.0.0.1:1/x", "--symbol", "btc/usdt"], "--symbol: 'btc/usdt' is not a symbol"),
        (["--stream", "ws://127.0.0.1:1/x", "--for", "soon"], "--for: 'soon' is not a duration"),
        (["--stream", "ws://127.0.0.1:1/x", "--url", "ftp://x"], "--url: 'ftp://x' is not an http(s) base URL"),
        (["--stream", "ws://127.0.0.1:1/x", "--url", "http://example.com"], "--url: plain http"),
    ],
)
def test_bad_arguments_are_one_error_line(tmp_path: Path, args: list[str], says: str) -> None:
    out = tmp_path / "r.jsonl.gz"
    full = ["--state-dir", str(tmp_path / "s"), "record", "--symbol", "btcusdt", "--out", str(out), *args]
    result = CliRunner().invoke(main, full)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {says}"), result.output
    assert not out.exists()


def test_an_unreachable_stream_is_an_error_and_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl.gz"
    args = ["record", "--stream", "ws://127.0.0.1:1/kline-api/ws", "--symbol", "btcusdt", "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--connect-timeout", "1"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot reach the market stream at ws://127.0.0.1:1/kline-api/ws"), (
        result.output
    )
    assert not out.exists()


def test_a_refused_channel_is_an_error(streamed: Streamed, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl.gz"
    args = ["record", "--stream", streamed.stream_url, "--symbol", "dogeusdt", "--out", str(out), "--for", "30s"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "Error: the market stream refused the channel market_dogeusdt_" in result.output
    assert not out.exists()


def test_an_unlisted_symbol_is_refused_before_recording(streamed: Streamed, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl.gz"
    args = ["record", "--stream", streamed.stream_url, "--url", streamed.url, "--symbol", "dogeusdt", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: --symbol: dogeusdt not listed by {streamed.url}")


def test_an_existing_file_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl.gz"
    out.write_bytes(b"precious")
    args = ["record", "--stream", "sandbox", "--symbol", "btcusdt", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "--force overwrites it" in result.output
    assert out.read_bytes() == b"precious"
