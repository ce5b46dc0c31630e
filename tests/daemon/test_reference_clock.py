"""A reference quote is aged by the clock that received it: a venue stamping its quotes in the future cannot keep
them fresh after it goes quiet (defect 2 of the red-team round), through a running daemon."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from rebalancer.exchange import reference
from rebalancer.state.store import StateStore
from tests.daemon.test_daemon import _book, _jobs
from tests.daemonkit import running
from tests.jobtext import ladder_job

DAY_MS = 86_400_000


@pytest.fixture
def future_venue(sandbox: object) -> Iterator[tuple[str, dict[str, bool]]]:
    """An /open/api venue whose ticker is stamped a day ahead; ``state["up"] = False`` makes it answer 503."""
    state = {"up": True}
    mid = sandbox.engine.mid("btcusdt")  # type: ignore[attr-defined]

    def answer(request: Request) -> Response:
        if not state["up"]:
            return Response("maintenance", status=503)
        data = {"buy": str(mid - 1), "sell": str(mid + 1), "last": str(mid), "time": time.time_ns() // 10**6 + DAY_MS}
        return Response(json.dumps({"code": "0", "msg": "suc", "data": data}), mimetype="application/json")

    server = make_server("127.0.0.1", 0, Request.application(answer), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", state
    finally:
        server.shutdown()


def test_a_quote_stamped_in_the_future_ages_once_the_venue_goes_quiet(
    tmp_path, sandbox, future_venue, wait_for, monkeypatch
) -> None:
    monkeypatch.setattr(reference, "SHARED", reference.ReferenceBoard())  # no quote left from another test
    url, state = future_venue
    text = ladder_job("fut", sandbox.url, every="200ms", levels=2).replace(
        "reference: mid\n", f'reference: {{source: "{url}", max_age: 1s}}\n'
    )
    jobs = _jobs(tmp_path, {"fut": text})
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store, running(store, jobs) as daemon:
        assert wait_for(lambda: len(_book(sandbox)) == 4)
        state["up"] = False

        def paused_for_age() -> bool:
            last = daemon.last_plan("fut")
            return last is not None and "older than max_age" in (last[0].paused or "")

        assert wait_for(paused_for_age, timeout=20), daemon.last_plan("fut")
