"""Secrets after a full run: a recognisable secret (and API key) in the environment, every command run for real in a
child process, then every output, log line, plan file, state-store row and the sandbox's world file searched.

Where the API key may appear: only on the exchange's side, i.e. the sandbox world's account table and the owner field
of its orders (the exchange must know whose orders they are). The secret may appear only in that account table (the
exchange must know it to check signatures). Neither appears in anything rebalancer writes or prints.

Also here: ``http://`` to a non-loopback host is refused through the CLI (a job-file error, nothing sent) unless the
job says ``insecure: true``; the sandbox's /sandbox/ endpoints over real HTTP never show a secret. (The loopback-only
guard of /sandbox/ is tested with a non-loopback client address in tests/sandbox/test_control.py.)
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import requests

from rebalancer import logs
from rebalancer.engine.connect import credentials
from rebalancer.engine.runner import run_pass
from rebalancer.exchange.client import OpenApiClient
from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.exchange.ratelimit import KeyLimiter
from rebalancer.jobfile.load import load_job
from rebalancer.sandbox.engine import Engine
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.server import SandboxServer
from rebalancer.state.store import StateStore
from tests.reliability.kit import job_text

SECRET = "CANARY-s3cr3t-7f3a9c1e5b2d4f60a8e1"
WRONG_SECRET = "CANARY-wr0ng-0c9e8d7f6a5b4c3d2e1f"
API_KEY = "canarykey7f3a9c1e5b2d4f60a8e1b2c3"
NEEDLES = (SECRET, WRONG_SECRET, API_KEY, "s3cr3t-7f3a9c1e", "wr0ng-0c9e8d7f", "key7f3a9c1e5b2d")


@dataclass
class World:
    """A sandbox of our own that saves its world to a file, with the canary account funded."""

    server: SandboxServer
    path: Path

    @property
    def url(self) -> str:
        """The base URL."""
        return self.server.url


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A sandbox on a free loopback port, saving to ``tmp_path/world.json``, with the canary account."""
    engine = Engine.create(seed=7, clock="manual")
    engine.add_account(API_KEY, SECRET, {"usdt": Decimal(100_000), "btc": Decimal(5)})
    path = tmp_path / "world.json"
    server = SandboxServer(engine, Faults(rate_limits=False), save_path=path)
    server.start()
    try:
        yield World(server, path)
    finally:
        server.stop()


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rebalancer", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _found(text: str) -> list[str]:
    return [needle for needle in NEEDLES if needle in text]


def _rows(db: Path) -> Iterator[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert tables, "the state store has no tables"
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                yield table, " | ".join(str(v) for v in row)


def test_no_secret_in_any_output_log_plan_history_or_state(world: World, tmp_path: Path) -> None:
    job = tmp_path / "canary.yaml"
    job.write_text(job_text("canary", world.url, levels=3))
    state = tmp_path / "state"
    env = {
        **os.environ,
        "REBALANCER_API_KEY": API_KEY,
        "REBALANCER_SECRET_KEY": SECRET,
        "REBALANCER_STATE_DIR": str(state),
        "NO_COLOR": "1",
    }
    engine, faults = world.server.engine, world.server.faults
    runs: dict[str, subprocess.CompletedProcess[str]] = {}
    runs["validate"] = _cli("validate", str(job), env=env, cwd=tmp_path)
    runs["plan"] = _cli("plan", str(job), "--json", "--out", str(tmp_path / "plan.json"), env=env, cwd=tmp_path)
    runs["apply"] = _cli("apply", str(job), "--plan", str(tmp_path / "plan.json"), "--yes", env=env, cwd=tmp_path)
    engine.advance(60)
    runs["run-json"] = _cli("run", str(job), "--once", "--log-format", "json", env=env, cwd=tmp_path)
    engine.set_price("btcusdt", engine.mid("btcusdt") * Decimal("1.01"))
    faults.update({"error_500": 0.3, "rate_429": 0.2, "drop_after_apply": 1.0, "drop_mode": "close", "seed": 5})
    runs["run-text-faulty"] = _cli("run", str(job), "--once", env=env, cwd=tmp_path)
    faults.update({"error_500": 0.0, "rate_429": 0.0, "drop_after_apply": 0.0})
    runs["history"] = _cli("history", "--json", env=env, cwd=tmp_path)
    runs["history-text"] = _cli("history", "canary", env=env, cwd=tmp_path)
    wrong = {**env, "REBALANCER_SECRET_KEY": WRONG_SECRET}
    runs["plan-bad-auth"] = _cli("plan", str(job), env=wrong, cwd=tmp_path)
    runs["run-bad-auth"] = _cli("run", str(job), "--once", "--log-format", "json", env=wrong, cwd=tmp_path)
    runs["cancel"] = _cli("cancel", str(job), "--yes", env=env, cwd=tmp_path)

    for name in ("validate", "plan", "apply", "run-json", "history", "history-text", "cancel"):
        assert runs[name].returncode == 0, f"{name}: {runs[name].stderr}"
    for name in ("plan-bad-auth", "run-bad-auth"):
        assert runs[name].returncode == 1, f"{name} should fail: {runs[name].stdout}{runs[name].stderr}"
    assert "sign error" in runs["plan-bad-auth"].stderr
    assert '"msg": "pass"' in runs["run-json"].stderr
    assert json.loads(runs["history"].stdout), "history is empty: the run was not recorded"

    leaks = [
        f"{name} {stream}: {_found(text)}"
        for name, r in runs.items()
        for stream, text in (("stdout", r.stdout), ("stderr", r.stderr))
        if _found(text)
    ]
    leaks += [
        f"{p.name}: {_found(p.read_text(errors='replace'))}"
        for p in tmp_path.glob("*.json")
        if p != world.path and _found(p.read_text(errors="replace"))
    ]
    db = state / "state.db"
    assert any("canary" in row for _, row in _rows(db)), "the state store holds no row of the job: nothing was checked"
    leaks += [f"state table {table}: {_found(row)}" for table, row in _rows(db) if _found(row)]
    leaks += [f"{f.name} bytes" for f in state.iterdir() if f.is_file() and _found(f.read_bytes().decode("latin-1"))]
    world.server.app.save()
    dumped = json.loads(world.path.read_text())
    accounts, orders = dumped.pop("accounts"), dumped.pop("orders")
    leaks += (
        [f"world (outside accounts and orders): {_found(json.dumps(dumped))}"] if _found(json.dumps(dumped)) else []
    )
    for order in orders:
        order.pop("api_key", None)  # the owner: the exchange must know whose order it is
        if _found(json.dumps(order)):
            leaks.append(f"world order {order.get('id')}: {_found(json.dumps(order))}")
    assert any(SECRET in json.dumps(a) for a in accounts), "the exchange's account table should hold the secret"
    assert not leaks, "\n".join(leaks)


def test_debug_logs_of_a_faulty_pass_never_show_the_secret(world: World, tmp_path: Path) -> None:
    stream = io.StringIO()
    logger = logging.getLogger("rebalancer")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logs.setup("json", level=logging.DEBUG, stream=stream)
    job = load_job(_write(tmp_path, world.url))
    api_key, secret = credentials(job.exchange, {"REBALANCER_API_KEY": API_KEY, "REBALANCER_SECRET_KEY": SECRET})
    faults = world.server.faults
    faults.update({"error_500": 0.3, "rate_429": 0.2, "drop_after_apply": 1.0, "seed": 2})
    profile = ExchangeProfile(backoff_base=0.001, backoff_max=0.01)
    limiter = KeyLimiter(RateLimit(1000, 1.0), RateLimit(1000, 1.0))
    try:
        with (
            StateStore(f"sqlite:///{tmp_path / 'debug.db'}") as store,
            OpenApiClient(world.url, api_key, secret, profile, limiter=limiter) as client,
        ):
            for _ in range(5):
                try:
                    report = run_pass(job, client, store, apply=True)
                    logging.getLogger("rebalancer.test").info("report", extra={"report": repr(report)})
                except Exception as exc:
                    logging.getLogger("rebalancer.test").exception("pass failed: %s", exc)
            logging.getLogger("rebalancer.test").info("client", extra={"client": repr(client), "store": repr(store)})
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
    text = stream.getvalue()
    assert '"level": "debug"' in text, "no debug line was written: the check would prove nothing"
    assert not _found(text), _found(text)


def test_sandbox_control_endpoints_never_show_a_secret(world: World) -> None:
    for path in ("/sandbox/state", "/sandbox/faults", "/sandbox/requests"):
        answer = requests.get(world.url + path, timeout=10)
        assert answer.status_code == 200
        assert SECRET not in answer.text and WRONG_SECRET not in answer.text


def _write(folder: Path, url: str, extra: str = "") -> Path:
    path = folder / "remote.yaml"
    path.write_text(job_text("remote", url, levels=2) + extra)
    return path


def test_plain_http_to_a_remote_host_is_refused_through_the_cli_unless_insecure(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "REBALANCER_API_KEY": API_KEY,
        "REBALANCER_SECRET_KEY": SECRET,
        "REBALANCER_STATE_DIR": str(tmp_path / "state"),
        "NO_COLOR": "1",
    }
    remote = "http://192.0.2.10:8080"  # TEST-NET-1: documentation only, never routed
    job = _write(tmp_path, remote)
    for command in (["plan", str(job)], ["apply", str(job), "--yes"], ["run", str(job), "--once"]):
        result = _cli(*command, env=env, cwd=tmp_path)
        assert result.returncode == 1, result
        assert "plain http is allowed only for loopback" in result.stderr or "insecure" in result.stderr
        assert "Traceback" not in result.stderr and not _found(result.stdout + result.stderr)
    assert not (tmp_path / "state" / "state.db").exists() or not list(_rows(tmp_path / "state" / "state.db"))
    job.write_text(job.read_text().replace(f'{{url: "{remote}"}}', f'{{url: "{remote}", insecure: true}}'))
    assert "insecure: true" in job.read_text()
    assert _cli("validate", str(job), env=env, cwd=tmp_path).returncode == 0


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "REBALANCER_API_KEY": API_KEY,
        "REBALANCER_SECRET_KEY": SECRET,
        "REBALANCER_STATE_DIR": str(tmp_path / "state"),
        "NO_COLOR": "1",
    }


def test_an_exchange_message_quoting_the_api_key_is_redacted_in_the_store_and_history(
    world: World, tmp_path: Path
) -> None:
    job = tmp_path / "quoted.yaml"
    job.write_text(job_text("quoted", world.url, levels=2))
    world.server.faults.update({"reject_place": 1.0, "reject_code": "10067",
                                "reject_message": "api_key {api_key} may not trade (key={api_key})"})  # fmt: skip
    env = _env(tmp_path)
    applied = _cli("apply", str(job), "--yes", env=env, cwd=tmp_path)
    assert applied.returncode == 1 and "10067" in applied.stdout, applied.stdout + applied.stderr
    assert "may not trade" in applied.stdout, "the exchange's message must still be shown, redacted"
    history = _cli("history", "--json", env=env, cwd=tmp_path)
    assert history.returncode == 0 and "may not trade" in history.stdout
    rows = list(_rows(tmp_path / "state" / "state.db"))
    assert any("may not trade" in row for _, row in rows), "no stored row quotes the message: nothing was checked"
    leaks = [f"{table}: {row}" for table, row in rows if API_KEY in row]
    printed = {"apply": applied.stdout + applied.stderr, "history": history.stdout + history.stderr}
    leaks += [f"{name}: {text}" for name, text in printed.items() if API_KEY in text]
    assert not leaks, "\n".join(leaks)


def test_history_redacts_a_secret_stored_before_redaction_existed(tmp_path: Path) -> None:
    from rebalancer.vocab import Mode, PassResult

    db = tmp_path / "state" / "state.db"
    with StateStore(f"sqlite:///{db}") as store:
        pass_id = store.start_pass("old", Mode.APPLY)
        store.finish_pass(pass_id, result=PassResult.ERROR, summary={}, error="placeholder")
    with sqlite3.connect(db) as conn:  # an old rebalancer wrote the exchange's message verbatim
        conn.execute("UPDATE passes SET error = ?", (f"denied for api_key {API_KEY}",))
    shown = _cli("history", "--json", env=_env(tmp_path), cwd=tmp_path)
    assert shown.returncode == 0 and "denied for api_key ***" in shown.stdout, shown.stdout + shown.stderr
    assert API_KEY not in shown.stdout


HARD_SECRET = 'Kx\\9"q/é+ %&=?-CANARY-7f3a'  # a backslash, a quote, non-ASCII, and what URL-encoding changes


@pytest.mark.parametrize(
    "form",
    [HARD_SECRET, json.dumps(HARD_SECRET)[1:-1], json.dumps(HARD_SECRET, ensure_ascii=False)[1:-1],
     quote(HARD_SECRET, safe=""), quote_plus(HARD_SECRET),
     re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(HARD_SECRET))],
    ids=["raw", "json-escaped", "json-escaped-unicode", "url-encoded", "form-encoded", "url-encoded-lower"],
)  # fmt: skip
def test_json_logs_redact_a_secret_in_any_written_form(form: str) -> None:
    logs.register_secret(HARD_SECRET)
    record = logging.LogRecord("rebalancer.test", logging.ERROR, __file__, 1, "answer: %s", (form,), None)
    record.body = {"msg": f"bad key {form}", "nested": [form]}
    record.url = f"https://x.invalid/?api_key={form}"
    line = logs.JsonFormatter().format(record)
    decoded = json.dumps(json.loads(line), ensure_ascii=False)
    for written in (HARD_SECRET, json.dumps(HARD_SECRET)[1:-1], quote(HARD_SECRET, safe=""), quote_plus(HARD_SECRET)):
        assert written not in line and written not in decoded, (written, line)
    assert "Kx" not in decoded and "***" in line
    assert "Kx" not in logs.TextFormatter().format(record)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres@127.0.0.1:5432/no_such_db_canary?password=CANARY-pg-pass-42",
        "postgresql+psycopg://postgres:CANARY-pg-pass-42@127.0.0.1:1/none",
        "postgresql+psycopg://postgres@127.0.0.1:1/none?sslpassword=CANARY-pg-pass-42&nonsense=1",
        "postgresql+psycopg://postgres:CANARY-pg-pass-42@127.0.0.1:5432/db with spaces?x=%zz",
        "post gres://u:CANARY-pg-pass-42@h/d",
    ],
)
def test_a_state_url_password_is_never_shown(tmp_path: Path, url: str) -> None:
    shown = _cli("history", env={**_env(tmp_path), "REBALANCER_STATE_URL": url}, cwd=tmp_path)
    assert shown.returncode == 1 and shown.stderr.startswith("Error: "), shown.stderr
    assert "CANARY-pg-pass-42" not in shown.stdout + shown.stderr and "Traceback" not in shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1


def test_the_state_store_never_writes_a_registered_secret_whatever_it_is_handed(tmp_path: Path) -> None:
    from rebalancer.state.store import OrderResult
    from rebalancer.vocab import ActionKind, Mode, OutcomeStatus, PassResult

    secret = "CANARY-store-9d8c7b6a"
    logs.register_secret(secret)
    db = tmp_path / "store.db"
    with StateStore(f"sqlite:///{db}") as store:
        pass_id = store.start_pass("handed", Mode.APPLY)
        store.record_batch(pass_id, 0, {"symbol": "btcusdt", "note": secret}, {"msg": f"key {secret}"}, secret)
        result = OrderResult(ActionKind.PLACE, "BUY", "1", "1", None, OutcomeStatus.REJECTED, "5", f"for {secret}")
        store.record_results(pass_id, [result])
        store.record_rejections("handed", [("buy[0]", "5", f"key={quote(secret)}")], datetime.now(UTC))
        store.finish_pass(pass_id, result=PassResult.REJECTED, summary={}, warnings=[secret], error=secret)
    rows = list(_rows(db))
    assert sum("***" in row for _, row in rows) >= 4
    assert not [f"{table}: {row}" for table, row in rows if "store-9d8c7b6a" in row]
