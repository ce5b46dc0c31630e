"""`run --http` on a port another program holds: one `Error:` line and exit 1, never the web server's own text."""

from __future__ import annotations

import socket
from pathlib import Path

from click.testing import CliRunner

from rebalancer.cli.main import main
from rebalancer.scheduler.metrics import HealthServer, Metrics


def test_a_busy_http_port_is_one_error_line(tmp_path: Path, job_text, daemon_env) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(job_text("busy"))
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["run", str(job), "--http", f"127.0.0.1:{port}"], env=daemon_env)
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: --http: cannot listen on 127.0.0.1:{port}: ")
    assert "in use" in lines[0]


def test_a_free_port_is_served_and_port_zero_picks_one() -> None:
    server = HealthServer(Metrics(), "127.0.0.1", 0, lambda: True)
    server.start()
    try:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as conn:
            conn.sendall(b"GET /livez HTTP/1.0\r\nHost: x\r\n\r\n")
            assert b"200 OK" in conn.recv(4096)
    finally:
        server.stop()
