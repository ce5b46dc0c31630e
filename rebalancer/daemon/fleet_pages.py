"""The status pages of ``run --workers N``, served by the parent: the same ``/`` and ``/jobs/NAME`` as one daemon's.

Each worker serves its own pages on a loopback port. ``/jobs/NAME`` is the page of the worker that runs NAME,
fetched and passed on. ``/`` is one index of every worker's jobs: each worker answers ``ROWS_PATH`` with the rows of
its own ``/`` as JSON; the parent keeps from each the rows of the jobs in its share, sorts them as the daemon does
and renders the page. A worker's answer is untrusted input: one that does not answer, or answers anything but rows
of the documented shape, has its jobs left out of that page, and the page says so.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from rebalancer.defaults import FLEET_PROBE_SECONDS, FLEET_ROWS_LIMIT
from rebalancer.pictures import status_page
from rebalancer.scheduler.pages import ROWS_PATH
from rebalancer.vocab import PassResult

_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no HTTP_PROXY between the processes
_RESULTS = frozenset(result.value for result in PassResult)
_MAYBE_OBJECTS = ("last_pass", "last_error", "market_data", "reload_failure")

Row = dict[str, Any]


class FleetPages:
    """Answers ``/`` and ``/jobs/NAME`` in the parent from the workers at ``urls()`` (the i-th is worker i's, empty
    while unknown); ``owner`` says which worker runs a job, by name."""

    def __init__(self, urls: Callable[[], Sequence[str]], owner: Callable[[str], int]) -> None:
        self._urls = urls
        self._owner = owner

    def respond(self, path: str) -> tuple[str, bytes] | None:
        """(HTTP status, HTML) for ``/`` and ``/jobs/NAME``; None for any other path."""
        if path == "/":
            return "200 OK", self._index()
        if path.startswith("/jobs/"):
            return self._job(unquote(path.removeprefix("/jobs/")))
        return None

    def _index(self) -> bytes:
        now = datetime.now(UTC)
        answers = [worker_rows(fetch(url + ROWS_PATH) if url else None) for url in self._urls()]
        rows, daemons, notes = merged_rows(answers, self._owner)
        return status_page.index_page(rows, now, daemon=", ".join(daemons) or None, notes=notes).encode()

    def _job(self, name: str) -> tuple[str, bytes]:
        urls = self._urls()
        share = self._owner(name)
        url = urls[share] if share < len(urls) else ""
        answer = fetch(f"{url}/jobs/{quote(name, safe='')}") if url else None
        if answer is not None and answer[0] in (200, 404):
            return ("200 OK" if answer[0] == 200 else "404 Not Found"), answer[1]
        why = f"Worker {share}, which runs the job {name}, did not answer: try again in a moment."
        return "503 Service Unavailable", status_page.unanswered_page(name, why).encode()


def merged_rows(
    answers: Sequence[tuple[str, list[Row]] | None], owner: Callable[[str], int]
) -> tuple[list[Row], list[str], list[str]]:
    """One index from every worker's (daemon name, rows), None for a worker that gave none: the rows of each job
    from the worker that runs it, sorted by name as the daemon sorts them, then the refused files that never loaded
    (every worker reports those: each once); the workers' names; a note per worker whose jobs are left out."""
    named: list[Row] = []
    unnamed: dict[Any, Row] = {}
    daemons: list[str] = []
    notes: list[str] = []
    for share, answer in enumerate(answers):
        if answer is None:
            notes.append(f"worker {share} did not answer: its jobs are left out of this page")
            continue
        daemons.append(answer[0])
        for row in answer[1]:
            if row["job"] is None:
                unnamed.setdefault(row.get("source"), row)
            elif owner(row["job"]) == share:
                named.append(row)
    named.sort(key=lambda row: str(row["job"]))
    return named + list(unnamed.values()), daemons, notes


def worker_rows(answer: tuple[int, bytes] | None) -> tuple[str, list[Row]] | None:
    """A worker's answer to ``ROWS_PATH`` as (daemon name, rows); None unless it is a 200 with rows of the shape
    the page reads, every one of them."""
    if answer is None or answer[0] != 200:
        return None
    try:
        document = json.loads(answer[1])
    except (ValueError, RecursionError):  # RecursionError: arrays nested past the parser's depth
        return None
    if not isinstance(document, dict) or not isinstance(document.get("daemon"), str):
        return None
    rows = document.get("rows")
    if not isinstance(rows, list) or not all(_is_row(row) for row in rows):
        return None
    return document["daemon"], rows


def _is_row(row: object) -> bool:
    if not isinstance(row, dict) or "job" not in row or not isinstance(row["job"], str | None):
        return False
    if not isinstance(row.get("source"), str | None) or not isinstance(row.get("paused"), bool):
        return False
    if not all(isinstance(row.get(key), dict | None) for key in _MAYBE_OBJECTS):
        return False
    last: Mapping[str, Any] = row.get("last_pass") or {}
    reload: Mapping[str, Any] = row.get("reload_failure") or {"problem": ""}
    return (last.get("result") is None or last["result"] in _RESULTS) and isinstance(reload.get("problem"), str)


def fetch(url: str) -> tuple[int, bytes] | None:
    """(HTTP status, body) of a worker's answer on loopback; None when it does not answer in time, or answers more
    than ``FLEET_ROWS_LIMIT`` bytes."""
    if not url.startswith("http://127.0.0.1:"):
        return None
    try:
        with _LOOPBACK.open(url, timeout=FLEET_PROBE_SECONDS) as answer:
            status, body = int(answer.status), bytes(answer.read(FLEET_ROWS_LIMIT + 1))
    except urllib.error.HTTPError as exc:
        with exc:
            status, body = exc.code, bytes(exc.read(FLEET_ROWS_LIMIT + 1))
    except (OSError, ValueError, http.client.HTTPException):
        return None
    return None if len(body) > FLEET_ROWS_LIMIT else (status, body)
