"""One pass, from job to recorded outcome.

    gather ──► decide ──► send ──► record

``runner.run_pass`` is the one pass shared by plan, apply, cancel, run --once, the daemon and the cluster;
``executor`` sends a plan and confirms it by reading the book back; ``lease`` frames every pass that may send
(the lease, its fence and ``JobSession``); ``connect`` turns a Job into a connected exchange.
"""
