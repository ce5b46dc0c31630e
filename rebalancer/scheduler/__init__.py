"""What the single daemon and a cluster member share: the pass frame and job table (core.py), the plug interface
(plugs.py), timing, the due queue, file watching and signals, metrics, reloads and the status pages."""
