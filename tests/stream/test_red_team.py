"""Hostile input for the stream client's URLs and for ``rebalancer record``'s output file.

Credentials in a stream URL (``user:pass@``) are refused like in every other URL; a token in its query never
reaches an error line or a log; an ``--out`` that cannot be written is one line (never a traceback) and a failed
recording never removes a file it did not make (a device, a pipe).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from rebalancer.cli.main import main
from rebalancer.stream.client import StreamHub
from tests.stream.conftest import Streamed, wait_for

TOKEN = "tok3n0f0the0user0never0shown"


def _record(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--state-dir", str(tmp_path / "state"), "record", "--symbol", "btcusdt", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "url",
    [
        "wss://user:s3cr3tpw@127.0.0.1:1/kline-api/ws",
        f"ws://{TOKEN}@127.0.0.1:1/kline-api/ws",
        "ws://user:s3cr3tpw@[::1]:1/kline-api/ws",
    ],
)
def test_credentials_in_a_stream_url_are_refused_and_never_shown(tmp_path: Path, url: str) -> None:
    out = tmp_path / "r.jsonl.gz"
    code, output = _record(tmp_path, "--stream", url, "--out", str(out), "--connect-timeout", "1")
    assert code == 1
    assert output.strip() == (
        "Error: --stream: credentials must not be written into a URL (user:password@); it would be shown and stored"
    )
    assert not out.exists()
    with pytest.raises(ValueError, match="credentials must not be written") as refused:
        StreamHub(url)
    assert "s3cr3tpw" not in str(refused.value) and TOKEN not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"ws://127.0.0.1:1/kline-api/ws?token={TOKEN}", "Error: cannot reach the market stream at ws://127.0.0.1:1/"),
        (f"http://127.0.0.1:1/kline-api/ws?token={TOKEN}", "Error: --stream: 'http://127.0.0.1:1/kline-api/ws?…' is"),
        (f"wss://127.0.0.1:1/kline-api/ws?token={TOKEN} x", "Error: --stream: a URL holds no spaces, line breaks"),
    ],
    ids=["unreachable", "not-a-websocket", "white-space"],
)
def test_a_token_in_a_stream_urls_query_never_reaches_the_error(tmp_path: Path, url: str, says: str) -> None:
    code, output = _record(tmp_path, "--stream", url, "--out", str(tmp_path / "r.jsonl.gz"), "--connect-timeout", "1")
    assert code == 1
    assert output.startswith(says), output
    assert TOKEN not in output


def test_display_url_keeps_where_and_hides_what_may_be_secret() -> None:
    from rebalancer.jobfile.urls import display_url

    assert display_url("wss://ws.example.com/kline-api/ws") == "wss://ws.example.com/kline-api/ws"
    assert display_url(f"wss://ws.example.com:8443/kline-api/ws?token={TOKEN}&x=1") == (
        "wss://ws.example.com:8443/kline-api/ws?…"
    )
    assert display_url(f"ws://u:{TOKEN}@[::1]:5/x") == "ws://[::1]:5/x"
    assert display_url("ws://host:port/x") == "(a URL that cannot be read)"


def test_the_client_logs_a_stream_url_without_its_query(streamed: Streamed, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="rebalancer")
    hub = StreamHub(f"{streamed.stream_url}?token={TOKEN}")
    try:
        hub.subscribe("btcusdt", lambda frame: None)
        wait_for(lambda: hub.stats().connected, "connected")
        wait_for(lambda: any(r.getMessage() == "market stream connected" for r in caplog.records), "the log line")
    finally:
        hub.close()
    connected = [r for r in caplog.records if r.getMessage() == "market stream connected"]
    assert connected and all(getattr(r, "url", None) == f"{streamed.stream_url}?…" for r in connected)
    client = [r for r in caplog.records if not r.name.startswith("rebalancer.sandbox")]  # the server sees its URL
    leaks = [vars(r) for r in client if TOKEN in str(vars(r))]
    assert not leaks, leaks


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_an_out_file_on_a_full_disk_is_one_error_line_and_stays(tmp_path: Path) -> None:
    code, output = _record(tmp_path, "--stream", "sandbox", "--out", "/dev/full", "--force", "--for", "3s")
    assert code == 1
    assert output.strip().splitlines()[-1] == (
        "Error: --out: cannot write /dev/full: No space left on device; the recording was removed"
    ), output
    assert Path("/dev/full").exists()  # a device given as --out is never unlinked


def test_an_out_file_that_cannot_be_made_is_one_error_line(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl.gz"
    out.symlink_to(tmp_path / "nowhere" / "r.jsonl.gz")  # its directory exists; the file cannot be made
    code, output = _record(tmp_path, "--stream", "sandbox", "--out", str(out), "--for", "1s")
    assert code == 1
    assert output.strip() == f"Error: --out: cannot write {out}: No such file or directory", output


def test_a_failed_recording_never_removes_a_pipe_given_as_out(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    drained: list[bytes] = []
    reader = threading.Thread(target=lambda: drained.append(fifo.read_bytes()), daemon=True)
    reader.start()  # opening a pipe for writing waits for its reader
    code, output = _record(
        tmp_path, "--stream", "ws://127.0.0.1:1/kline-api/ws", "--out", str(fifo), "--force", "--connect-timeout", "1"
    )
    reader.join(timeout=20)
    assert code == 1 and output.startswith("Error: cannot reach the market stream"), output
    assert fifo.exists() and fifo.is_fifo()
