"""``python -m rebalancer``: the same as the ``rebalancer`` command."""

from rebalancer.cli.commands import main

main()
