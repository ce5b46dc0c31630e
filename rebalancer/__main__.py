"""``python -m rebalancer``: the same as the ``rebalancer`` command."""

from rebalancer.cli import main

main()
