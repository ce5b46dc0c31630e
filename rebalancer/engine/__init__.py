"""One pass, from job to recorded outcome.

    gather ──► decide ──► [write-ahead ─► send] ──► record
    1 read tx   pure       1 write tx, only        1 write tx
                           with placements or
                           a loss-limit pause

``runner.run_pass`` wires the steps and is the one pass of plan, apply, cancel, run --once, the daemon and the
cluster. ``gather`` reads the market and the state store; ``tracker`` settles which orders the job owns (values
only); ``decide`` makes the plan; ``send`` commits the write-ahead and sends through ``executor`` (batches) and
``readback`` (the book read back to confirm them); ``record`` turns what happened into one ``PassOutcome``.
``lease`` frames every pass that may send (the lease, its fence and ``JobSession``); ``connect`` turns a Job into a
connected exchange.
"""
