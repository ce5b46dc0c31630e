"""Table definitions of the state store (SQLAlchemy Core), portable between SQLite and PostgreSQL.

Times are stored as integer epoch milliseconds (UTC) so that both databases compare them the same way;
prices and volumes as exact decimal text; free-form documents (plan summary, warnings, requests, answers) as
JSON text. ``schema_version`` holds one row whose number is raised by every change to these tables, so that a
later release can migrate an old store and an old release refuses a newer one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)

from rebalancer.logs import redact

# 2: leases.epoch (fencing tokens); the cluster tables. 3: watched_orders.volume. 4: passes.wake and .prices
SCHEMA_VERSION = 4


class RedactedString(TypeDecorator[str]):
    """``String`` whose values have every registered secret replaced by ``***`` on their way into the database.

    Whatever a pass hands the store (an exchange's message quoting the api_key...), no secret is written: every text
    column of every table is of this type or ``RedactedText`` (``tests/state/test_state_redaction.py`` holds them to
    it). Being the column's bind processor, it runs for the text parameters of the statements that use the column
    and for nothing else, with no per-statement hook.
    """

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """``value`` redacted when it is text (None and other values as they are)."""
        return redact(value) if isinstance(value, str) else value


class RedactedText(RedactedString):
    """``Text`` redacted as ``RedactedString`` is."""

    impl = Text
    cache_ok = True  # asked of each class, not inherited


metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)

# One reconcile pass; ``result`` is NULL while the pass runs (or if its process died before finishing it).
passes = Table(
    "passes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", RedactedString(200), nullable=False),
    Column("mode", RedactedString(32), nullable=False),
    Column("started_at_ms", BigInteger, nullable=False),
    Column("duration_ms", BigInteger),
    Column("result", RedactedString(32)),
    Column("summary", RedactedText, nullable=False, default="{}"),
    Column("warnings", RedactedText, nullable=False, default="[]"),
    Column("error", RedactedText),
    Column("reference_price", RedactedString(64)),
    Column("fingerprint", RedactedString(200)),
    Column("wake", RedactedString(16)),  # why the pass ran: timer, reference, trade, market (NULL: a command's pass)
    Column("prices", RedactedString(16)),  # where its market prices came from: rest or stream (NULL: none were read)
    Index("ix_passes_job_started", "job", "started_at_ms"),
    # Each job's latest pass, and its latest failed one, for ``rebalancer status`` (one index seek per job).
    Index("ix_passes_job_id", "job", "id"),
    Index(
        "ix_passes_job_error_id",
        "job",
        "id",
        sqlite_where=text("error IS NOT NULL"),
        postgresql_where=text("error IS NOT NULL"),
    ),
)

# One mass_replaceV2 request of a pass, with its answer or the error instead. Never holds credentials.
batches = Table(
    "batches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pass_id", Integer, ForeignKey("passes.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("batch_index", Integer, nullable=False),
    Column("recorded_at_ms", BigInteger, nullable=False),
    Column("request", RedactedText, nullable=False),
    Column("answer", RedactedText),
    Column("error", RedactedText),
)

# The outcome of each cancel and placement of a pass, as confirmed by reading the book back.
order_results = Table(
    "order_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pass_id", Integer, ForeignKey("passes.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("seq", Integer, nullable=False),
    Column("action", RedactedString(16), nullable=False),
    Column("side", RedactedString(8), nullable=False),
    Column("price", RedactedString(64), nullable=False),
    Column("volume", RedactedString(64), nullable=False),
    Column("order_id", RedactedString(64)),
    Column("status", RedactedString(16), nullable=False),
    Column("code", RedactedString(64)),
    Column("message", RedactedText),
)

# Order ids a job with ``ownership: tracked`` placed and may therefore cancel.
tracked_orders = Table(
    "tracked_orders",
    metadata,
    Column("job", RedactedString(200), primary_key=True),
    Column("order_id", RedactedString(64), primary_key=True),
    Column("tracked_at_ms", BigInteger, nullable=False),
)

# A batch about to be sent: open until the read-back has confirmed (and tracked) what it placed.
in_flight = Table(
    "in_flight",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", RedactedString(200), nullable=False, index=True),
    Column("pass_id", Integer, ForeignKey("passes.id", ondelete="SET NULL")),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("closed_at_ms", BigInteger),
    # Until when a write whose answer timed out may still land on the book (None: it cannot land late).
    Column("late_until_ms", BigInteger),
)

in_flight_placements = Table(
    "in_flight_placements",
    metadata,
    Column("in_flight_id", Integer, ForeignKey("in_flight.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("side", RedactedString(8), nullable=False),
    Column("price", RedactedString(64), nullable=False),
    Column("volume", RedactedString(64), nullable=False),
)

# Per-job switches set from the command line (``rebalancer pause/resume JOB``).
job_flags = Table(
    "job_flags",
    metadata,
    Column("job", RedactedString(200), primary_key=True),
    Column("paused", Boolean, nullable=False, default=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)

# Which live process runs a job; a lease past ``expires_at_ms`` is free for anyone to take. ``epoch`` grows by one
# at every acquisition (never at a renewal) and is never reset, so a pass can tell whether its lease is still the one.
leases = Table(
    "leases",
    metadata,
    Column("job", RedactedString(200), primary_key=True),
    Column("holder", RedactedString(200), nullable=False),
    Column("acquired_at_ms", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
    Column("epoch", BigInteger, nullable=False, server_default=text("0")),
)

# Per job and ladder level: consecutive placement rejections with one code, and when to try the level again.
level_rejections = Table(
    "level_rejections",
    metadata,
    Column("job", RedactedString(200), primary_key=True),
    Column("level", RedactedString(64), primary_key=True),
    Column("code", RedactedString(64), nullable=False),
    Column("message", RedactedText),
    Column("times", Integer, nullable=False),
    Column("not_before_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)

# Jobs a running daemon has scheduled, with the schedule it keeps (for ``rebalancer status``'s next due).
daemon_jobs = Table(
    "daemon_jobs",
    metadata,
    Column("job", RedactedString(200), primary_key=True),
    Column("holder", RedactedString(200), nullable=False),
    Column("source", RedactedText, nullable=False),
    Column("every_ms", BigInteger),
    Column("cron", RedactedString(200)),
    Column("paused_in_file", Boolean, nullable=False, default=False),
    Column("registered_at_ms", BigInteger, nullable=False),
)

# Job files whose latest version a daemon refused to load (it keeps running the previous version).
reload_failures = Table(
    "reload_failures",
    metadata,
    Column("file", RedactedString(1000), primary_key=True),
    Column("job", RedactedString(200)),
    Column("holder", RedactedString(200), nullable=False),
    Column("problem", RedactedText, nullable=False),
    Column("times", Integer, nullable=False),
    Column("first_failed_at_ms", BigInteger, nullable=False),
    Column("last_failed_at_ms", BigInteger, nullable=False),
)

# Members of a cluster (``run --cluster``): who they are and when they last proved alive.
cluster_members = Table(
    "cluster_members",
    metadata,
    Column("member", RedactedString(200), primary_key=True),
    Column("host", RedactedString(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("started_at_ms", BigInteger, nullable=False),
    Column("heartbeat_at_ms", BigInteger, nullable=False),
    Column("stopped_at_ms", BigInteger),
    Column("passes", BigInteger, nullable=False, default=0),
    Column("fenced", BigInteger, nullable=False, default=0),
)

# The cluster's jobs: the version (job file fingerprint) a member needs to run one, its schedule and when it is due,
# its failure backoff, and which member ran it last.
cluster_jobs = Table(
    "cluster_jobs",
    metadata,
    Column("job", RedactedString(200), primary_key=True),
    Column("fingerprint", RedactedString(200), nullable=False),
    Column("defined_by", RedactedString(200), nullable=False),
    Column("defined_at_ms", BigInteger, nullable=False),
    Column("schedule", RedactedText, nullable=False),
    Column("next_due_ms", BigInteger, nullable=False),
    Column("failures", Integer, nullable=False, default=0),
    Column("not_before_ms", BigInteger, nullable=False, default=0),
    Column("last_member", RedactedString(200)),
    Column("last_pass_at_ms", BigInteger),
    Column("last_result", RedactedString(32)),
)

# The version of each job each member loaded; one that differs from ``cluster_jobs`` is not run by that member.
cluster_member_jobs = Table(
    "cluster_member_jobs",
    metadata,
    Column("member", RedactedString(200), primary_key=True),
    Column("job", RedactedString(200), primary_key=True),
    Column("fingerprint", RedactedString(200), nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)

# Requests granted against a shared rate limit (one bucket per exchange, key digest and kind), for a whole cluster.
rate_grants = Table(
    "rate_grants",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("bucket", RedactedString(200), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Index("ix_rate_grants_bucket_at", "bucket", "at_ms"),
)

# Orders of a job whose fills are being learnt: the cumulative deal volume last seen and the ladder level.
watched_orders = Table(
    "watched_orders",
    metadata,
    Column("job", RedactedString(200), primary_key=True),
    Column("order_id", RedactedString(64), primary_key=True),
    Column("side", RedactedString(8), nullable=False),
    Column("price", RedactedString(64), nullable=False),
    Column("deal_volume", RedactedString(64), nullable=False),
    Column("level", RedactedString(64)),
    Column("seen_at_ms", BigInteger, nullable=False),
    # The order's volume when first seen: no fill is learnt past it (NULL: unknown).
    Column("volume", RedactedString(64)),
)

# Every fill of a job's own orders; keyed by the cumulative deal volume it brought the order to, so never twice.
fills = Table(
    "fills",
    metadata,
    Column("job", RedactedString(200), primary_key=True),
    Column("order_id", RedactedString(64), primary_key=True),
    Column("deal_volume", RedactedString(64), primary_key=True),
    Column("side", RedactedString(8), nullable=False),
    Column("price", RedactedString(64), nullable=False),
    Column("volume", RedactedString(64), nullable=False),
    Column("level", RedactedString(64)),
    Column("filled_at_ms", BigInteger, nullable=False),
    Column("pass_id", Integer, ForeignKey("passes.id", ondelete="SET NULL")),
    Index("ix_fills_job_at", "job", "filled_at_ms"),
)

# Per job: why it is paused when a guard paused it (e.g. max_loss) and since when its fills count toward the loss.
job_risk = Table(
    "job_risk",
    metadata,
    Column("job", RedactedString(200), primary_key=True),
    Column("paused_by", RedactedString(32)),
    Column("reason", RedactedText),
    Column("count_since_ms", BigInteger),
    Column("updated_at_ms", BigInteger, nullable=False),
)
