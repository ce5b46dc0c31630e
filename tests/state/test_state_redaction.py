"""No registered secret reaches a stored row or a store error, on SQLite and PostgreSQL.

Redaction is done by the text columns' type (``schema.RedactedString``, the bind processor of every text column),
not by a hook on every statement: so every text column must have that type, and a pass's two writes (the write-ahead
and the outcome, which touch every table a pass writes) must store ``***`` wherever they were handed a secret.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import quote

import pytest
from sqlalchemy import String, TypeDecorator, create_engine, select, text

from rebalancer import logs
from rebalancer.core.fills import Fill, Seen
from rebalancer.errors import StateError
from rebalancer.models import Side
from rebalancer.state import schema
from rebalancer.state.outcome import BatchWrite, OwnershipChange, PassOutcome, PreSend
from rebalancer.state.records import OrderResult
from rebalancer.state.store import StateStore
from rebalancer.vocab import ActionKind, Mode, OutcomeStatus, PassResult, PausedBy

SECRET = "canary-redact-5e4d3c2b"
NOW = datetime(2026, 3, 1, 10, 40, tzinfo=UTC)


def test_every_text_column_of_every_table_is_redacted() -> None:
    columns = [c for table in schema.metadata.tables.values() for c in table.columns]
    text_columns = [
        c for c in columns if isinstance(c.type.impl if isinstance(c.type, TypeDecorator) else c.type, String)
    ]
    assert len(text_columns) > 60, "the check found the text columns"
    plain = [f"{c.table.name}.{c.name}" for c in text_columns if not isinstance(c.type, schema.RedactedString)]
    assert plain == [], "a text column without redaction could store a secret"


def test_a_pass_handed_a_secret_everywhere_stores_none_of_it(store: StateStore, store_url: str) -> None:
    logs.register_secret(SECRET)
    job = f"job-{SECRET}"
    pass_id, in_flight = store.record_presend(
        PreSend(job, Mode.RUN, NOW, pause=(PausedBy.MAX_LOSS, f"loss, quoting {SECRET}"))
    )
    assert in_flight is None
    fill = Fill(f"id-{SECRET}", Side.BUY, Decimal("1"), Decimal("1"), Decimal("1"), NOW, f"buy[{SECRET}]")
    store.record_outcome(
        PassOutcome(
            job=job,
            mode=Mode.RUN,
            started_at=NOW,
            pass_id=pass_id,
            result=PassResult.REJECTED,
            summary={SECRET: 1},
            warnings=(f"warned {SECRET}",),
            error=f"failed: {SECRET}",
            fingerprint=SECRET,
            batches=(BatchWrite(0, {"note": SECRET}, {"msg": f"key {quote(SECRET)}"}, SECRET, NOW),),
            results=(
                OrderResult(ActionKind.PLACE, "BUY", "1", "1", SECRET, OutcomeStatus.REJECTED, SECRET, f"for {SECRET}"),
            ),
            ownership=OwnershipChange(track=(f"o-{SECRET}",)),
            fills=(fill,),
            watch=(Seen(f"w-{SECRET}", Side.BUY, Decimal("1"), Decimal("0"), SECRET, Decimal("1")),),
            rejected=((f"buy[{SECRET}]", SECRET, f"because {SECRET}"),),
        )
    )
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            rows = [
                (table.name, repr(tuple(row)))
                for table in schema.metadata.sorted_tables
                for row in conn.execute(select(table))
            ]
    finally:
        engine.dispose()
    handed = {"passes", "batches", "order_results", "tracked_orders", "fills", "watched_orders", "level_rejections"}
    assert {table for table, row in rows if "***" in row} == handed | {"job_flags", "job_risk"}
    assert [f"{table}: {row}" for table, row in rows if "5e4d3c2b" in row] == []


def test_a_database_error_quoting_a_secret_is_redacted(store: StateStore) -> None:
    secret = "canary_table_7f6e5d4c"  # a name PostgreSQL keeps as it is, quoted back in its message
    logs.register_secret(secret)
    with pytest.raises(StateError) as caught, store._db.tx(write=False) as conn:
        conn.execute(text(f"SELECT * FROM {secret}"))
    message = str(caught.value)
    assert "7f6e5d4c" not in message and "***" in message, message
