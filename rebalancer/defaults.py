"""Every default of the tool in one place, each with why it has the value it has.

Modules import these instead of writing numbers of their own, so a default is changed (and reviewed) here once.
The simulated exchange (``rebalancer.sandbox``) keeps its own constants: they describe the exchange it pretends
to be, not how this tool behaves.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

# --- The exchange API --------------------------------------------------------------------------------------------

BATCH_LIMIT = 1000
"""mass_replaceV2 takes at most this many cancels and this many placements per request."""

PAGE_SIZE = 1000
"""Open orders per page: the template's largest page, so that a full book takes the fewest requests."""

MAX_PAGES = 1000
"""Most open-order pages one read takes (a million orders at 1000 a page, 10,000 at a server's cap of 10): a
backstop against a server that keeps answering with new ids; past it the read fails instead of running for hours."""

OPEN_ORDER_MARGIN = 1000
"""Open orders one read accepts beyond twice what its job can own (orders of other jobs and people on the symbol,
orders on their way out): a server claiming more than that is lying or is not this account's, and is not read."""

OPEN_ORDER_BOUND = 10_000
"""The open-order bound of a client that was not told its job's (direct uses of ``OpenApiClient``)."""

READ_RATE = (10, 1.0)
"""At most 10 reads per second per key: the template's documented limit for reads."""

WRITE_RATE = (100, 10.0)
"""At most 100 writes per 10 seconds per key: the template's documented limit for writes."""

CONNECT_TIMEOUT_SECONDS = 5.0
"""A healthy exchange accepts a connection in well under a second; longer means it is down or unreachable."""

READ_TIMEOUT_SECONDS = 15.0
"""The total time of one request, connect included: long enough for a 1000-order batch under load, short enough
that a daemon tick does not hang on a dead socket."""

READ_RETRIES = 3
"""Reads are safe to repeat; three more tries ride out a brief outage without stalling the pass for long."""

READ_RETRY_BACKOFF_SECONDS = 0.25
"""First wait before retrying a failed read; it doubles on each further try."""

READ_RETRY_BACKOFF_CAP_SECONDS = 8.0
"""Longest wait between read retries, so that the retries of one pass stay within a daemon period."""

POOLED_CONNECTIONS = 256
"""Idle keep-alive connections kept per exchange URL in one process, shared by its transports: as many as were open
at once, up to this (a daemon's passes send 16 requests at once at most); more are opened and closed as needed."""

MAX_ANSWER_BYTES = 16 * 1024 * 1024
"""A larger answer body is refused: the largest documented answer (1000 orders of a page) is well under 1 MiB."""

SYMBOLS_TTL_SECONDS = 3600.0
"""The symbol list (precisions, coins) is read once an hour per deployment: it changes rarely and is large."""

MISSING_SYMBOL_RETRY_SECONDS = 30.0
"""A symbol missing from a fresh symbol list is looked up again at most this often (it may just have been listed)."""

MAX_RETRY_AFTER_SECONDS = 300.0
"""A server's Retry-After is honoured up to this many seconds (a broken header must not stall a daemon)."""

# --- After a batch is sent -------------------------------------------------------------------------------------

READ_BACK_ATTEMPTS = 4
"""Times the executor reads the book back to confirm a batch: exchanges show new orders after a short delay."""

READ_BACK_BACKOFF_SECONDS = 0.25
"""First wait between read-backs; it doubles, so four attempts span about two seconds."""

READ_BACK_PAUSE_CAP_SECONDS = 5.0
"""Longest pause before a read-back, even when a rate limit asks for more: the pass must settle its batch soon."""

IN_FLIGHT_GRACE = timedelta(minutes=2)
"""How long a batch whose answer was lost may still show up on the book before its placements count as gone."""

LATE_WRITE_WINDOW = timedelta(minutes=1)
"""How long the levels of a lost batch are not placed again, since its write may still land."""

CLOCK_SLACK_MS = 60_000
"""How far the exchange clock may differ from ours when matching an order's creation time with a lost batch."""

# --- Rejections, failures and leases -----------------------------------------------------------------------------

REJECTION_BACKOFF_BASE_SECONDS = 30
"""A level rejected twice in a row with one code waits this long; the exchange will likely refuse it again."""

REJECTION_BACKOFF_CAP_SECONDS = 30 * 60
"""Longest hold of a rejected level: a balance or rule may change, so the level is retried at least this often."""

FAILURE_BACKOFF_BASE_SECONDS = 2.0
"""First delay of a daemon job after a failed pass: short, since most failures are a brief network glitch."""

FAILURE_BACKOFF_CAP_SECONDS = 300.0
"""Longest delay of a failing daemon job: an exchange that is down is tried again at least every five minutes."""

COMMAND_LEASE_SECONDS = 600.0
"""A command's job lease: longer than any one pass, short enough that a killed command frees its job by itself."""

DAEMON_LEASE_SECONDS = 60.0
"""The daemon's job lease: its lease keeper renews every job's together each quarter of it, whatever the job's
period, and a daemon killed on another host frees its jobs a minute later (on its own host, at once)."""

REQUEST_BOUND_SECONDS = CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS
"""The fence's margin when an exchange does not say its timeouts: a write sent with less lease left could still be
in flight when another process takes the job over (more than a request's total, ``READ_TIMEOUT_SECONDS``, takes)."""

CRON_PERIOD_SECONDS = 60.0
"""The nominal period of a cron job (for leases and grace times): cron's finest step is one minute."""

# --- The daemon and the state store ----------------------------------------------------------------------------

STOP_WAIT_SECONDS = 30.0
"""How long stopping waits for a running pass (unless the job cancels on stop): one slow pass, not a hung one."""

WATCH_INTERVAL_SECONDS = 1.0
"""How often the daemon looks at its job files: a save is picked up quickly at the cost of one stat per file."""

SCHEDULER_THREADS = 16
"""Passes that may run at once: they mostly wait on the network, so more threads than cores pay off."""

FLEET_PROBE_SECONDS = 1.0
"""``run --workers``: how long the parent waits on a worker's ``/metrics`` or ``/readyz``, and how often it looks."""

JOBS_PER_WORKER = 400
"""``run --workers auto``: one worker process per this many jobs loaded at start, up to the cores available (one
process runs a few hundred jobs at a 5 s interval: bench/RESULTS-daemon.md)."""

MAX_WORKERS = 64
"""The most processes ``run --workers`` starts."""

FLEET_ROWS_LIMIT = 64 * 1024 * 1024
"""``run --workers``: the most bytes the parent reads of a worker's answer (its status page rows, a few KiB a job;
its ``/metrics``, under a megabyte at a thousand jobs)."""

OVERLOAD_LOG_SECONDS = 60.0
"""Overload (passes due faster than they run) is logged at most once a minute: said, not flooded."""

METRICS_RENDER_BUDGET_SECONDS = 0.05
"""A ``/metrics`` rendering that takes longer than this, in CPU (about 500 jobs) or on the clock (a busy process, a
fleet's parent waiting for its workers), is kept fresh in the background instead."""

METRICS_REFRESH_SECONDS = 10.0
"""How old a background ``/metrics`` rendering may get: well within Prometheus's usual 15-60 s scrape interval."""

WARM_POLL_SECONDS = 0.5
"""How often a starting process asks whether it is ready, to render ``/metrics`` before the first scrape."""

MARKET_TICK_SECONDS = 1.0
"""The daemon's jobs on one deployment share one ticker read per second: a reference that young is current."""

STREAM_STALE_SECONDS = 3.0
"""``exchange.stream_stale``'s default: a streamed book silent this long is stale (3× a one-second depth push): the job
polls until it speaks again."""

STREAM_CHECK_SECONDS = 0.25
"""How often the stream wake source looks at each book's age and at wakes held back by ``min_gap``."""

BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite writer waits for the lock: a daemon and a command may write at the same moment."""

BUSY_RETRY_FIRST_SECONDS = 0.0002
"""How soon a SQLite writer asks again for the write lock another process holds (then twice as long each time)."""

BUSY_RETRY_LONGEST_SECONDS = 0.002
"""The longest a SQLite writer waits between two asks for the write lock: a try costs ~10 µs of CPU, and SQLite's own
busy handler, which sleeps up to 100 ms between tries, slept through most of the turns another process left it."""

GROUP_COMMIT_LARGEST = 32
"""The most pass writes one SQLite transaction commits together: a group holds the write lock ~1 ms a write."""

SANDBOX_LOCK_WAIT_SECONDS = 10.0
"""How long a command waits for another process's embedded sandbox to save its world."""

# --- Job files (the file's own defaults are in schemas/job.schema.json; these mirror them for ``Job`` values) -----

EVERY_SECONDS = 30
"""A job without ``schedule`` runs every 30 seconds: often enough to follow a market, far within rate limits."""

MIN_GAP_SECONDS = 1
"""Two passes of one job are at least a second apart however often the stream wakes it (``schedule.min_gap``): a
busy market cannot spend a key's whole request budget on one job."""

API_KEY_ENV = "REBALANCER_API_KEY"
"""The environment variable the API key is read from when a job names none."""

SECRET_KEY_ENV = "REBALANCER_SECRET_KEY"
"""The environment variable the secret key is read from when a job names none."""

REFERENCE_TTL_SECONDS = 1.0
"""A quote of another venue is read at most once a second, however many jobs use it: one read per daemon tick."""
REFERENCE_TIMEOUT_SECONDS = 5.0
"""A reference read must not hold a pass up: five seconds for the whole answer, then placements pause instead."""

# --- The cluster (``run --cluster``) -----------------------------------------------------------------------------

CLUSTER_CONNECT_TIMEOUT_SECONDS = 2.0
"""A member's connect timeout: shorter than the daemon's, since a member's lease must outlast any request in flight."""

CLUSTER_READ_TIMEOUT_SECONDS = 5.0
"""A member's read timeout: with the connect timeout, the 7 s a write may take, which the fence keeps in hand."""

CLUSTER_LEASE_SECONDS = 9.0
"""A member's pass lease: the 7 s a request may take plus two renewals, so a dead member frees its jobs in 9 s."""

CLUSTER_PASSES_PER_CORE = 4
"""Passes a member runs at once per core: a pass mostly waits on the exchange and the database, and at one per core
a member served 2.5 passes/s at 13 % CPU where four per core served all 12 due (bench/cluster_bench.py)."""

CLUSTER_RENEW_SECONDS = 1.0
"""How often a member renews the leases of its running passes and proves itself alive."""

CLUSTER_WORKER_HEARTBEAT_SECONDS = 1.0
"""How often a member's queue worker records its heartbeat in the queue's tables."""

CLUSTER_STALLED_AFTER_SECONDS = 4.0
"""A worker without a heartbeat for this long is dead or frozen: the cluster ends its running jobs."""

CLUSTER_DISPATCH_SECONDS = 1.0
"""How often the passes that are due are handed out: every member tries on each whole multiple of it on the clock,
and the first one claims them."""

CLUSTER_DISPATCH_CLAIM_SECONDS = 5.0
"""A dispatching member claims the due jobs it reads for this long: it moves them on within milliseconds once their
passes are queued; if it dies first, they are due again this much later."""

CLUSTER_RECOVER_SECONDS = 2.0
"""How often every member looks for running jobs of dead or frozen workers and ends them: well inside the lease's 9 s,
so a dead member's jobs still continue as soon as its leases expire."""

CLUSTER_MEMBER_STALE_SECONDS = 5.0
"""A member without a heartbeat for this long is not counted on to run a job (dispatch, status)."""

CLUSTER_MEMBER_GONE_SECONDS = 600.0
"""A member silent (stopped, dead or frozen) for this long is gone: ``status`` and the pages no longer list it, nor
the job versions it had. Long enough to see a member that just died or restarts; short enough that members of
past deployments do not stay listed as unresponsive forever."""

CLUSTER_PG_SESSION = {"lock_timeout": "3s", "idle_in_transaction_session_timeout": "5s"}
"""A member's PostgreSQL sessions: a frozen member may hold a transaction open; the server ends such a session after
5 s (releasing its row locks), and no member waits more than 3 s for a lock, so one frozen member never stalls all."""

PLAIN_DISTANCE_WARN_PERCENT = Decimal("0.05")
"""A distance written as a plain number (``first: "0.6"``: 0.6 quote units) closer than this percentage of the
reference gets a plan warning: five basis points is inside the spread most ladders quote around, which is where a
percentage written without its ``%`` lands (``"0.6"`` on btcusdt at 30000 is 0.002 %), while a deliberate absolute
distance is rarely that small."""
