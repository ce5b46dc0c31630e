"""A cluster member's ``--http`` serves the daemon's pages: ``/`` lists every job of the cluster with the member that
ran it last, ``/jobs/NAME`` one job; members gone for ``CLUSTER_MEMBER_GONE_SECONDS`` leave the pages and ``status``.
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from click.testing import CliRunner

from rebalancer.cli.main import main
from rebalancer.defaults import CLUSTER_MEMBER_GONE_SECONDS
from rebalancer.state.store import StateStore
from tests.cluster.conftest import wait_for


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


def _get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5)
    except requests.RequestException:
        return None


def test_members_serve_every_job_of_the_cluster_and_gone_members_leave(
    cluster_jobs, spawn_member, cluster_url: str, tmp_path: Path
) -> None:
    folder, env = cluster_jobs(2, every="1s")
    # Each member loads one job only: a page must still show the other member's job.
    only = {}
    for i in range(2):
        only[i] = tmp_path / f"only{i}"
        only[i].mkdir()
        (only[i] / f"c00{i}.yaml").write_text((folder / f"c00{i}.yaml").read_text())
    ports = [_free_port(), _free_port()]
    members = [spawn_member(str(only[i]), "--http", f"127.0.0.1:{ports[i]}", env=env) for i in range(2)]
    names = [f"{socket.gethostname()}:{m.pid}:cluster" for m in members]
    now = datetime.now(UTC)
    gone_at = now - timedelta(seconds=CLUSTER_MEMBER_GONE_SECONDS + 60)
    silent_at = now - timedelta(seconds=CLUSTER_MEMBER_GONE_SECONDS / 2)
    with StateStore(cluster_url) as store:
        assert wait_for(lambda: len(store.members()) == 2, timeout=60), [m.log for m in members]
        store.register_member("gone:1:cluster", "old-host", 1, 1, now=gone_at)
        store.register_member("silent:2:cluster", "old-host", 2, 1, now=silent_at)

        def ran_both() -> bool:
            last = {j.job: j.last_member for j in store.cluster_jobs()}
            return last.get("c000") == names[0] and last.get("c001") == names[1]

        assert wait_for(ran_both, timeout=60), [m.log for m in members]

    assert wait_for(lambda: _get(f"http://127.0.0.1:{ports[1]}/readyz") is not None, timeout=30)
    index = _get(f"http://127.0.0.1:{ports[1]}/")
    assert index is not None and index.status_code == 200, index
    page = index.text
    assert f"cluster member {names[1]}" in page
    for job, member in (("c000", names[0]), ("c001", names[1])):
        row = next(line for line in page.splitlines() if f"data-job='{job}'" in line)
        assert f"<td class='member'>{member}</td>" in row, row
    assert "data-member='silent:2:cluster' data-state='unresponsive'" in page
    assert "gone:1:cluster" not in page

    other = _get(f"http://127.0.0.1:{ports[1]}/jobs/c000")  # run by the other member
    assert other is not None and other.status_code == 200
    assert "<h1>c000</h1>" in other.text and "table class='passes'" in other.text
    own = _get(f"http://127.0.0.1:{ports[1]}/jobs/c001")
    assert own is not None and own.status_code == 200 and "svg" in own.text, "its own job's ladder is drawn"
    missing = _get(f"http://127.0.0.1:{ports[0]}/jobs/ghost")
    assert missing is not None and missing.status_code == 404

    cli_env = {"REBALANCER_STATE_URL": cluster_url, "REBALANCER_STATE_DIR": str(tmp_path / "cli-state")}
    listed = json.loads(CliRunner().invoke(main, ["status", "--members", "--json"], env=cli_env).stdout)
    assert {m["member"] for m in listed} == {*names, "silent:2:cluster"}
    table = CliRunner().invoke(main, ["status"], env=cli_env).stdout
    assert "silent:2:cluster" in table and "gone:1:cluster" not in table
    assert all(m.stop() == 0 for m in members), [m.log for m in members]
    assert "Traceback" not in members[0].log + members[1].log
