"""rebalancer: keep a declared ladder of limit orders standing on an /open/api exchange.

The flow is job file → ladder → diff → plan → executor → exchange; see docs/architecture.md. Importing this package is
kept cheap on purpose: heavy modules (requests, SQLAlchemy, APScheduler) are imported where they are used.
"""

__version__ = "0.1.0"
