"""Job files → Job values; every problem of every file is reported at once: ``file:line:col: path: message``.

Reading one file goes: bytes (size-capped) → YAML nodes with positions (``rebalancer.jobfile.yamlpos``, safe loader
only, no anchors, aliases or duplicate keys) → secrets scan → JSON-Schema shape check
(``rebalancer.jobfile.schema``, which also holds the defaults) → cross-field checks (``rebalancer.jobfile.checks``) →
the frozen ``Job``. Problems of every stage are collected and raised together as one ``JobFileError``.
Numbers are exact decimals from the YAML source text; nothing in the file is interpolated (no environment
variables, no includes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path as FilePath
from typing import Any

from rebalancer.errors import JobFileError, Problem
from rebalancer.job import (
    Amount,
    ExchangeConfig,
    FixedOrder,
    Job,
    Lifecycle,
    Limits,
    Notify,
    OnBlind,
    OnStop,
    Ownership,
    Schedule,
    SideLadder,
    Spacing,
    TimeUnit,
    Tolerance,
)
from rebalancer.jobfile.checks import (
    cross_check,
    find_secrets,
    register_query_secrets,
    to_amount,
    to_decimal,
    to_rate,
    to_seconds,
    webhook_problems,
)
from rebalancer.jobfile.market import build_inventory, build_reference, market_problems
from rebalancer.jobfile.schema import check_shape, default_of
from rebalancer.jobfile.yamlpos import MAX_BYTES, Mark, Path, RawProblem, format_path, read_yaml
from rebalancer.models import Side
from rebalancer.vocab import AccountUse, SignMethod

__all__ = ["Accepted", "FileRead", "check_paths", "load_job", "load_jobs", "read_job_file"]

JOB_SUFFIXES = (".yaml", ".yml")


def load_job(path: str | FilePath, *, changes: Mapping[Path, Any] | None = None) -> Job:
    """Read one job file; raise ``JobFileError`` listing every problem in it.

    ``changes`` set keys (by path, e.g. ``("ladder", "buy", "first")``) to other values before the checks, as if
    the file said so (``rebalancer replay --vary``); a problem they cause is reported at the key's place or its
    nearest parent's.
    """
    job, problems, _ = _read(path, changes)
    if problems or job is None:
        raise JobFileError(problems)
    return job


def load_jobs(paths: Sequence[str | FilePath]) -> list[Job]:
    """Read job files and folders (``*.yaml``/``*.yml`` in each, sorted, not recursive) as one set of jobs.

    Every problem of every file is raised together as one ``JobFileError``, including job names used twice
    (reported at the later file's ``name``) and folders holding no job file.
    """
    jobs, problems = _read_all(paths)
    if problems:
        raise JobFileError(problems)
    return jobs


def check_paths(paths: Sequence[str | FilePath]) -> list[Problem]:
    """The problems ``load_jobs`` would raise, as a list; empty when every file is valid (``validate``)."""
    return _read_all(paths)[1]


def expand_paths(paths: Sequence[str | FilePath]) -> tuple[list[FilePath], list[Problem]]:
    """Files named directly plus the job files of named folders, each once; problems for empty folders."""
    files: list[FilePath] = []
    problems: list[Problem] = []
    seen: set[FilePath] = set()
    for given in paths:
        path = FilePath(given)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in JOB_SUFFIXES and p.is_file())
            if not found:
                problems.append(Problem(str(path), 1, 1, "", f"no job files found in {path}"))
        else:
            found = [path]
        for file in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                files.append(file)
    return files, problems


def _read_all(paths: Sequence[str | FilePath]) -> tuple[list[Job], list[Problem]]:
    files, problems = expand_paths(paths)
    accepted = Accepted()
    for file in files:
        read = read_job_file(file)
        problems.extend(read.problems)
        if read.job is None:
            continue
        clash = accepted.conflict(read)
        if clash is not None:
            problems.append(clash)
            continue
        accepted.add(read.job)
    return accepted.jobs, problems


@dataclass(frozen=True)
class FileRead:
    """One job file read on its own: its job (None when it has problems), the problems, where its name stands."""

    path: FilePath
    job: Job | None
    problems: tuple[Problem, ...]
    name_mark: Mark


def read_job_file(path: str | FilePath) -> FileRead:
    """Read one job file without regard to any other (the daemon reloads file by file)."""
    job, problems, mark = _read(path)
    return FileRead(FilePath(path), job, tuple(problems), mark)


Market = tuple[str, str, str]


def _market(job: Job) -> Market:
    return (job.exchange.url, job.exchange.api_key_env, job.symbol)


class Accepted:
    """The jobs accepted so far, in order, looked up by name and by market: checking each of a thousand files
    against all the jobs before it took a tenth of a second of a daemon's start."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self._names: dict[str, Job] = {}
        self._markets: dict[Market, list[Job]] = {}

    def add(self, job: Job) -> None:
        """Accept ``job`` (checked with ``conflict`` first)."""
        self.jobs.append(job)
        self._names.setdefault(job.name, job)
        self._markets.setdefault(_market(job), []).append(job)

    def conflict(self, read: FileRead) -> Problem | None:
        """Why the job of ``read`` cannot run beside the accepted jobs (its name taken, or a shared market where one
        side has ``ownership: symbol`` and would cancel the other's orders); None when it can."""
        job = read.job
        if job is None:
            return None
        line, column = read.name_mark
        other = self._names.get(job.name)
        if other is not None:
            message = f"job name '{job.name}' is already used by {other.source}"
            return Problem(str(read.path), line, column, "name", message)
        for other in self._markets.get(_market(job), ()):
            if Ownership.SYMBOL in (job.ownership, other.ownership):
                message = (
                    f"job '{other.name}' ({other.source}) trades {job.symbol} on the same account and one of them "
                    "has ownership: symbol, so each would cancel the other's orders; give both ownership: tracked"
                )
                return Problem(str(read.path), line, column, "ownership", message)
        return None


def _read(path: str | FilePath, changes: Mapping[Path, Any] | None = None) -> tuple[Job | None, list[Problem], Mark]:
    """One file: the Job (None when it has any problem), its problems in file order, where its name stands."""
    source = str(path)

    def fail(message: str) -> tuple[None, list[Problem], Mark]:
        return None, [Problem(source, 1, 1, "", message)], (1, 1)

    try:
        raw = FilePath(path).read_bytes()
    except FileNotFoundError:
        return fail("no such file")
    except OSError as error:
        return fail(f"cannot read the file: {error.strerror or error.__class__.__name__}")
    if len(raw) > MAX_BYTES:
        return fail(f"the file is larger than {MAX_BYTES // 1024} KiB; a job file is a few lines long")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return fail(f"the file is not UTF-8 text (byte {error.start + 1})")
    document = read_yaml(text)
    if changes and document.data is not None:
        for key_path, value in changes.items():
            if not _set(document.data, key_path, value):
                message = "cannot be set: a key on its way is not a mapping (or a list index is out of range)"
                document.problems.append(RawProblem(key_path, message, document.positions.value(key_path)))
        raw = raw + repr(sorted(changes.items())).encode()
    raw_problems = list(document.problems)
    if document.data is not None:
        secrets, silenced = find_secrets(document.data, document.positions)
        raw_problems += secrets
        raw_problems += check_shape(document.data, document.positions, silenced | document.refused)
        taken = [p.path for p in raw_problems if p.path]
        crossed = cross_check(document.data, document.positions)
        crossed += market_problems(document.data, document.positions)
        crossed += webhook_problems(document.data, document.positions)
        raw_problems += [p for p in crossed if not _overlaps(p.path[:2], taken)]
    problems = [_positioned(source, p) for p in sorted(raw_problems, key=lambda p: (p.mark, p.path))]
    name_mark = document.positions.value(("name",))
    if problems or document.data is None:
        return None, problems, name_mark
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    return build_job(document.data, source=source, source_hash=digest), [], name_mark


def _set(data: dict[str, Any], path: Path, value: Any) -> bool:
    """Set ``path`` in the document to ``value``, making missing mappings on the way; False when it cannot be set
    (a key on the way holds a value that is not a mapping, or a list index is out of range)."""
    node: Any = data
    for part, last in [(p, i == len(path) - 1) for i, p in enumerate(path)]:
        if isinstance(node, dict) and isinstance(part, str):
            if last:
                node[part] = value
                return True
            node = node.setdefault(part, {})
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            if last:
                node[part] = value
                return True
            node = node[part]
        else:
            return False
    return False


def _overlaps(path: Path, taken: list[Path]) -> bool:
    """True when ``path`` is, holds or lies within a path that already has a problem.

    Cross-field problems are looked up by their first two keys (``ladder.buy``), so that a side with any shape
    problem is not also blamed for what that problem implies.
    """
    return any(path[: len(other)] == other or other[: len(path)] == path for other in taken)


def _positioned(source: str, raw: RawProblem) -> Problem:
    return Problem(source, raw.mark[0], raw.mark[1], format_path(raw.path), raw.message)


def _get(data: dict[str, Any], *path: str) -> Any:
    """The value at ``path``, or the schema's default for it when the file leaves it out."""
    node: Any = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return default_of(path)
        node = node[part]
    return node


def _side(spec: dict[str, Any] | None, side: str) -> SideLadder | None:
    if spec is None:
        return None

    def optional(key: str) -> Any:
        return None if spec.get(key) is None else to_decimal(spec[key])

    return SideLadder(
        levels=int(spec["levels"]),
        first=to_amount(spec["first"]),
        step=to_amount(spec["step"]),
        size=to_decimal(spec["size"]),
        spacing=Spacing(spec.get("spacing", default_of(("ladder", side, "spacing")))),
        size_step=optional("size_step"),
        size_factor=optional("size_factor"),
        max_notional=optional("max_notional"),
    )


def _optional_decimal(value: Any) -> Decimal | None:
    return None if value is None else to_decimal(value)


def _optional_seconds(value: Any) -> Decimal | None:
    return None if value is None else to_seconds(value)


def _max_jump(value: Any) -> Amount | None:
    """``limits.max_jump``: absent or null takes the schema's default; zero turns the check off (None)."""
    amount = to_amount(default_of(("limits", "max_jump")) if value is None else value)
    return None if amount.value == 0 else amount


def build_job(data: dict[str, Any], *, source: str = "", source_hash: str = "") -> Job:
    """The Job of a document that passed every check; keys the file leaves out take the schema's defaults.

    The query values of its URLs (a JSON endpoint's or a webhook's token) are registered as secrets.
    """
    ref = build_reference(_get(data, "reference"))
    webhook = data["notify"]["webhook"] if "notify" in data else None
    register_query_secrets([url for url in (ref.source.url if ref.source else None, webhook) if url])
    schedule = data.get("schedule", default_of(("schedule",)))
    every, cron = schedule.get("every"), schedule.get("cron")
    max_orders = _get(data, "limits", "max_orders") if "max_orders" in data.get("limits", {}) else None
    band = data.get("limits", {}).get("band")
    max_jump = _max_jump(data.get("limits", {}).get("max_jump"))
    ladder = data.get("ladder", {})
    return Job(
        name=data["name"],
        symbol=data["symbol"],
        exchange=ExchangeConfig(
            url=_get(data, "exchange", "url"),
            api_key_env=_get(data, "exchange", "api_key_env"),
            secret_key_env=_get(data, "exchange", "secret_key_env"),
            time_unit=TimeUnit(_get(data, "exchange", "time_unit")),
            page_size=int(_get(data, "exchange", "page_size")),
            insecure=bool(_get(data, "exchange", "insecure")),
            timeout_seconds=to_seconds(_get(data, "exchange", "timeout")),
            max_batch=int(_get(data, "exchange", "max_batch")),
            sign=SignMethod(_get(data, "exchange", "sign")),
            read_rate=to_rate(_get(data, "exchange", "rate_limit", "reads")),
            write_rate=to_rate(_get(data, "exchange", "rate_limit", "writes")),
            account=AccountUse(_get(data, "exchange", "account")),
            stream=data.get("exchange", {}).get("stream"),
            stream_stale_seconds=to_seconds(_get(data, "exchange", "stream_stale")),
        ),
        schedule=Schedule(
            every_seconds=None if every is None else to_seconds(every),
            cron=None if cron is None else " ".join(cron.split()),
            jitter_seconds=to_seconds(_get(data, "schedule", "jitter")),
            min_gap_seconds=to_seconds(_get(data, "schedule", "min_gap")),
        ),
        reference=ref,
        buy=_side(ladder.get("buy"), "buy"),
        sell=_side(ladder.get("sell"), "sell"),
        orders=tuple(
            FixedOrder(Side(order["side"].upper()), to_decimal(order["price"]), to_decimal(order["size"]))
            for order in data.get("orders", [])
        ),
        tolerance=Tolerance(
            price=to_amount(_get(data, "tolerance", "price")),
            size=to_amount(_get(data, "tolerance", "size")),
        ),
        limits=Limits(
            max_orders=None if max_orders is None else int(max_orders),
            band=None if band is None else to_amount(band),
            post_only=bool(_get(data, "limits", "post_only")),
            max_jump=max_jump,
            price_ceiling=_optional_decimal(data.get("limits", {}).get("price_ceiling")),
            price_floor=_optional_decimal(data.get("limits", {}).get("price_floor")),
            max_loss=None if "max_loss" not in data.get("limits", {}) else to_decimal(data["limits"]["max_loss"]),
            max_blind_seconds=_optional_seconds(data.get("limits", {}).get("max_blind")),
            on_blind=OnBlind(_get(data, "limits", "on_blind")),
        ),
        notify=None
        if "notify" not in data
        else Notify(data["notify"]["webhook"], int(data["notify"].get("after_failures", 3))),
        lifecycle=Lifecycle(
            max_age_seconds=to_seconds(data["refresh"]["max_age"]) if "refresh" in data else None,
            fill_delay_seconds=to_seconds(data["after_fill"]["delay"]) if "after_fill" in data else None,
        ),
        inventory=build_inventory(data.get("inventory")),
        ownership=Ownership(_get(data, "ownership")),
        on_stop=OnStop(_get(data, "on_stop")),
        paused=bool(_get(data, "paused")),
        version=int(data["version"]),
        source=source,
        source_hash=source_hash,
    )
