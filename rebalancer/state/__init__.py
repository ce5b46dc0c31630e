"""The state store (SQLAlchemy Core; SQLite by default, PostgreSQL by URL): passes, tracked orders, leases, guards."""
