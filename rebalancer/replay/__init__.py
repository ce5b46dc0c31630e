"""``rebalancer replay``: a job's real pass pipeline run over a recorded or generated market, on a simulated account.

``market`` values, ``recording`` and ``walk`` sources, the pure fill ``matching``, the simulated ``venue`` (the
``Exchange`` protocol in process), the ``ledger`` of inventory and PnL, the ``driver`` that wakes the job as the
daemon would, the ``result`` and its renderings, and ``vary`` (one replay per value of a job key).
"""
