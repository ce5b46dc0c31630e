"""``rebalancer run --cluster``: many members on one PostgreSQL share the jobs, on the procrastinate job queue.

``app`` defines the queue and its tasks, ``dispatcher`` decides which jobs are due, ``member`` runs passes under a
fenced lease, ``supervisor`` owns a member process (signals, reloads, the worker thread), ``ratelimit`` shares each
API key's budget across members. See docs/cluster.md for the design. Nothing here is imported unless ``--cluster``
is given.
"""
