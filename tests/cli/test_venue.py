"""What real deployments and hostile servers do to the commands: each is one line that says what was being done,
what went wrong and what to check; nothing is sent, nothing hangs past its timeout."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.exchange.hostile import drip, http_answer, serving

SYMBOLS = [{"symbol": "btcusdt", "base_coin": "BTC", "count_coin": "USDT", "price_precision": 2, "amount_precision": 4}]
TICKER = {"buy": "29990.00", "sell": "30010.00", "last": "30000.00", "time": 1}


def envelope(data: object) -> bytes:
    return json.dumps({"code": "0", "msg": "suc", "data": data}).encode()


def routed(answers: dict[str, Callable[[bytes], bytes]]) -> Callable[[socket.socket, bytes, threading.Event], None]:
    """A hostile exchange: each request path under /open/api/ gets the answer its function builds."""

    def respond(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        path = re.match(rb"[A-Z]+ /open/api/([^? ]+)", request)
        build = answers.get(path.group(1).decode()) if path else None
        body = build(request) if build else b'{"code": "404", "msg": "not found", "data": null}'
        conn.sendall(http_answer(body))

    return respond


def clean_failure(result, *needles: str) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1, line
    for needle in needles:
        assert needle in line, line
    return line


def test_a_refused_signature_in_a_dry_run_says_what_was_read_and_what_to_check(cli, write_job, sandbox):
    result = cli("plan", str(write_job()), env_overrides={"REBALANCER_SECRET_KEY": "0123456789abcdef" * 2})
    line = clean_failure(
        result,
        "reading open orders (/open/api/v2/new_order): ",
        "the exchange refused the API key or its signature",
        "(code 100005)",
        "check REBALANCER_API_KEY and REBALANCER_SECRET_KEY",
    )
    assert "0123456789abcdef" not in line


def test_a_refused_signature_names_the_variables_the_job_names(cli, write_job, sandbox):
    job = write_job()
    text = job.read_text().replace(
        f'exchange: {{url: "{sandbox.url}"}}',
        f'exchange: {{url: "{sandbox.url}", api_key_env: DESK_KEY, secret_key_env: DESK_SECRET}}',
    )
    job.write_text(text)
    result = cli("plan", str(job), env_overrides={"DESK_KEY": sandbox.api_key, "DESK_SECRET": "x" * 32})
    clean_failure(result, "check DESK_KEY and DESK_SECRET")


def test_an_unknown_symbol_on_the_embedded_sandbox_names_it_and_the_closest_symbols(cli, tmp_path):
    job = tmp_path / "typo.yaml"
    job.write_text(
        "version: 1\nname: typo\nsymbol: btcusd\nexchange: {url: sandbox}\nreference: mid\n"
        "ladder:\n  buy: {levels: 1, first: 1%, step: 1%, size: 0.01}\n",
        encoding="utf-8",
    )
    line = clean_failure(cli("plan", str(job)), "symbol 'btcusd' is not listed on sandbox", "closest listed: btcusdt")
    assert "127.0.0.1" not in line, "the temporary address of the embedded sandbox means nothing to the user"


def test_an_unknown_symbol_on_a_url_names_its_host(cli, write_job, sandbox):
    job = write_job()
    job.write_text(job.read_text().replace("symbol: btcusdt", "symbol: ethusdx"))
    clean_failure(cli("plan", str(job)), "symbol 'ethusdx' is not listed on 127.0.0.1", "closest listed: ethusdt")


@contextlib.contextmanager
def answering(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback listener whose every connection ``handle`` gets at once (no request read first); its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with contextlib.suppress(OSError), conn:
                handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=10)
        listener.close()


def plain_http(conn: socket.socket) -> None:
    conn.settimeout(5)
    conn.recv(4096)  # the client's TLS hello
    conn.sendall(http_answer(b'{"code": "0"}'))


def test_a_tls_handshake_with_a_server_speaking_plain_http_is_not_an_answer_lost(cli, write_job):
    with answering(plain_http) as port:
        result = cli("plan", str(write_job(url=f"https://127.0.0.1:{port}")))
    line = clean_failure(result, "TLS handshake with 127.0.0.1:", "nothing was sent", "wrong version number")
    assert "answer lost" not in line


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself, and its key (the openssl command line makes them)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    subprocess.run([*command, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command line makes the certificate")
def test_a_self_signed_certificate_is_a_certificate_failure_not_an_answer_lost(cli, write_job, tmp_path):
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def handshake(conn: socket.socket) -> None:
        conn.settimeout(5)
        with contextlib.suppress(ssl.SSLError), context.wrap_socket(conn, server_side=True):
            pass

    with answering(handshake) as port:
        result = cli("plan", str(write_job(url=f"https://127.0.0.1:{port}")))
    line = clean_failure(result, "TLS handshake with 127.0.0.1:", "certificate verify failed", "nothing was sent")
    assert "answer lost" not in line


def test_the_timeout_bounds_the_whole_request_connect_included(cli, write_job):
    def dripping(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        drip(conn, http_answer(envelope(SYMBOLS)), 0.2, stop)  # every byte well within any per-read timeout

    with serving(dripping) as server:
        job = write_job(url=server.url)
        job.write_text(job.read_text().replace(f'url: "{server.url}"', f'url: "{server.url}", timeout: 1s'))
        started = time.monotonic()
        result = cli("plan", str(job))
        elapsed = time.monotonic() - started
    clean_failure(result, "reading the symbol list (/open/api/common/symbols)", "no complete answer within 1s")
    assert elapsed < 4, f"a 1 s timeout gave up after {elapsed:.1f} s"


def test_a_server_claiming_a_million_open_orders_is_refused_at_the_first_page(cli, write_job):
    pages = []

    def million(request: bytes) -> bytes:
        pages.append(request)
        page = int(re.search(rb"[?&]page=(\d+)", request).group(1))  # type: ignore[union-attr]
        row = {"id": page, "side": "BUY", "price": "1.00", "volume": "1", "status": 1}
        return envelope({"count": 1_000_000, "resultList": [row]})

    answers = {"common/symbols": lambda r: envelope(SYMBOLS), "get_ticker": lambda r: envelope(TICKER)}
    with serving(routed({**answers, "v2/new_order": million})) as server:
        result = cli("plan", str(write_job(url=server.url, levels=3)))
    clean_failure(
        result,
        "reading open orders (/open/api/v2/new_order)",
        "claims 1000000 open orders on btcusdt, more than the 1012 this job could own",
    )
    assert len(pages) == 1


@pytest.mark.parametrize(
    ("where", "answer"),
    [
        ("ticker", b'{"code": "0", "msg": "suc", "data": {"buy": 1e99999999999, "sell": "30010.00"}}'),
        ("ticker", b'{"code": "0", "msg": "suc", "data": {"buy": "1' + b"0" * 1_000_000 + b'", "sell": "30010"}}'),
        ("ticker", b'{"code": "0", "msg": "suc", "data": {"buy": 1' + b"0" * 5000 + b', "sell": "30010"}}'),
        ("envelope", b'{"code": 1e99999999999, "msg": "suc", "data": {}}'),
    ],
    ids=["exponent", "million-digit-text", "5000-digit-integer", "envelope-code"],
)
def test_absurd_numbers_in_an_answer_are_one_line_naming_the_field(cli, write_job, where, answer):
    answers = {
        "common/symbols": lambda r: envelope(SYMBOLS),
        "get_ticker": lambda r: answer,
        "v2/new_order": lambda r: envelope({"count": 0, "resultList": []}),
        "user/account": lambda r: envelope({"coin_list": [{"coin": "usdt", "normal": "100000", "locked": "0"}]}),
    }
    with serving(routed(answers)) as server:
        started = time.monotonic()
        result = cli("plan", str(write_job(url=server.url)))
        elapsed = time.monotonic() - started
    field = "buy" if where == "ticker" else "code"
    clean_failure(result, "reading the ticker (/open/api/get_ticker)", f"{field} is out of bounds")
    assert elapsed < 10


def test_a_deployment_without_v2_paths_is_found_out_once_and_traded_on_the_old_path(cli, write_job, sandbox):
    sandbox.faults.legacy_paths = True
    job = write_job(levels=2)
    result = cli("apply", str(job), "--yes")
    assert result.exit_code == 0, result.output
    assert len(sandbox.engine.open_orders(sandbox.api_key, "btcusdt")) == 4
    again = cli("plan", str(job), "--detailed-exitcode")
    assert again.exit_code == 0, again.output  # the orders placed were read back on the old path: nothing to do
    assert sandbox.server.app.request_counts()["/open/api/new_order"] >= 2


def test_the_sandbox_command_can_serve_only_the_old_paths(tmp_path):
    env = {**os.environ, "REBALANCER_STATE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "rebalancer", "sandbox", "--port", "0", "--reset", "--legacy-paths"]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        try:
            assert process.stdout is not None
            lines = dict(process.stdout.readline().strip().split(": ", 1) for _ in range(3))
            url, key, secret = lines["url"], lines["api_key"], lines["secret_key"]
            for path, status, code in (("v2/new_order", 404, "404"), ("new_order", 200, "0")):
                params = {"symbol": "btcusdt", "api_key": key, "time": str(int(time.time() * 1000))}
                text = "".join(f"{k}{params[k]}" for k in sorted(params)) + secret
                params["sign"] = hashlib.md5(text.encode()).hexdigest()
                answer = requests.get(f"{url}/open/api/{path}", params=params, timeout=10)
                assert (answer.status_code, answer.json()["code"]) == (status, code)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)


@pytest.mark.parametrize(
    "answer",
    [b'{"data": {"bid": 1e99999999999, "ask": "2"}}', b'{"data": {"bid": "1' + b"0" * 1_000_000 + b'", "ask": "2"}}'],
    ids=["exponent", "million-digits"],
)
def test_absurd_numbers_from_a_reference_source_pause_placements_and_say_why(cli, write_job, sandbox, answer):
    def respond(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        conn.sendall(http_answer(answer))

    with serving(respond) as server:
        job = write_job(levels=2)
        job.write_text(
            job.read_text().replace("reference: mid\n", "")
            + f'reference:\n  source: {{url: "{server.url}/q", bid: /data/bid, ask: /data/ask}}\n'
        )
        result = cli("plan", str(job))
    assert result.exit_code == 0, result.output
    assert "placements paused:" in result.output and "bid is out of bounds" in result.output
    assert "Traceback" not in result.output
    assert sandbox.engine.open_orders(sandbox.api_key, "btcusdt") == ()
