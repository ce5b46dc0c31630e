"""``python -m rebalancer``: the same as the ``rebalancer`` command."""

from rebalancer.cli.main import main

main(prog_name="rebalancer")
