"""Copy one state store into another, e.g. the SQLite file into a new PostgreSQL database (docs/deploy.md).

``python -m rebalancer.state.copy SOURCE_URL TARGET_URL`` copies every row of every table, ids included, in one
transaction on the target, and refuses a target that already holds any. Stop every rebalancer process that uses
the source first: a pass that ends during the copy would be lost. Tracked order ids matter most: without them a job
with ``ownership: tracked`` no longer knows (nor cancels) the orders it placed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sqlalchemy import Connection, Table, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from rebalancer.errors import StateError
from rebalancer.state import schema
from rebalancer.state.db import Database

_BATCH = 1000


def copy_store(source_url: str, target_url: str) -> dict[str, int]:
    """Copy every row from the store at ``source_url`` into the empty store at ``target_url``; rows per table."""
    Database(source_url).close()  # both stores exist with current tables (the check refuses a newer schema)
    Database(target_url).close()
    source, target = create_engine(source_url), create_engine(target_url)
    counts: dict[str, int] = {}
    try:
        with source.connect() as src, target.begin() as dst:
            tables = [table for table in schema.metadata.sorted_tables if table is not schema.schema_version]
            for table in tables:
                if dst.execute(select(func.count()).select_from(table)).scalar_one():
                    raise StateError(f"the target store already has rows in {table.name}; copy into an empty one")
            for table in tables:
                counts[table.name] = _copy_table(table, src, dst)
            if target.dialect.name == "postgresql":
                for table in tables:
                    _restart_sequence(table, dst)
    except SQLAlchemyError as exc:
        raise StateError(f"copying the state store failed: {str(exc).splitlines()[0]}") from exc
    finally:
        source.dispose()
        target.dispose()
    return counts


def _copy_table(table: Table, src: Connection, dst: Connection) -> int:
    rows = src.execute(select(table)).mappings()
    total = 0
    while chunk := [dict(row) for row in rows.fetchmany(_BATCH)]:
        dst.execute(table.insert(), chunk)
        total += len(chunk)
    return total


def _restart_sequence(table: Table, dst: Connection) -> None:
    """Rows copied with their ids leave PostgreSQL's id sequence behind: move it past the largest id."""
    for column in table.primary_key.columns:
        if column.autoincrement is True:
            dst.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                    f"COALESCE((SELECT MAX({column.name}) FROM {table.name}), 0) + 1, false)"
                )
            )


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: ``python -m rebalancer.state.copy SOURCE_URL TARGET_URL``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m rebalancer.state.copy SOURCE_URL TARGET_URL", file=sys.stderr)
        return 1
    try:
        counts = copy_store(args[0], args[1])
    except StateError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    shown = make_url(args[1]).render_as_string(hide_password=True)
    print(f"Copied into {shown}: " + ", ".join(f"{n} {name}" for name, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
