"""The single daemon: the local coordination plug (leases kept across passes), the timer, the worker pool that runs
due passes, and the process (signals, reloads, metrics and pages)."""
