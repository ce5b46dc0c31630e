"""`run --http` on a port another program holds: one `Error:` line and exit 1, never the web server's own text.

Both tests wait only on conditions with generous deadlines: the command runs in a child process, so its stderr holds
its own lines only (in-process, a line logged meanwhile by another test's leftover thread could land there), and an
answer is read to its end, however it is split into packets."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from rebalancer.scheduler.metrics import HealthServer, Metrics

DEADLINE = 120.0


def test_a_busy_http_port_is_one_error_line(tmp_path: Path, job_text, daemon_env) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(job_text("busy"))
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "rebalancer", "run", str(job), "--http", f"127.0.0.1:{port}"],
            env=daemon_env,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: --http: cannot listen on 127.0.0.1:{port}: ")
    assert "in use" in lines[0]


def _answer(port: int, request: bytes) -> bytes:
    """The whole answer to ``request`` (HTTP/1.0: the server closes the connection after it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_free_port_is_served_and_port_zero_picks_one() -> None:
    server = HealthServer(Metrics(), "127.0.0.1", 0, lambda: True)
    server.start()
    try:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        status = _answer(int(port), b"GET /livez HTTP/1.0\r\nHost: x\r\n\r\n").split(b"\r\n", 1)[0]
        assert status.startswith(b"HTTP/1.") and status.endswith(b" 200 OK"), status
    finally:
        server.stop()
