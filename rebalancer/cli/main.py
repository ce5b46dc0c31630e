"""The ``rebalancer`` command group: global options, the command list, and the one map from errors to exit codes.

Commands live in modules by what they do (``jobs``, ``inspect``, ``status``, ``sandbox``); they parse, call and print.
``Cli.invoke`` is the only place an exception becomes a message and an exit code.
"""

from __future__ import annotations

from typing import Any

import click

from rebalancer import __version__
from rebalancer.cli import inspect, jobs, sandbox, status
from rebalancer.errors import JobFileError, RebalancerError


class Cli(click.Group):
    """A click group that turns the exception tree into one-line messages and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; expected failures become ``Error: …`` on stderr and exit 1."""
        try:
            return super().invoke(ctx)
        except JobFileError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            ctx.exit(1)
        except RebalancerError as exc:
            from rebalancer.logs import redact

            click.echo(f"Error: {redact(str(exc))}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rebalancer")
def main() -> None:
    """Keep a declared ladder of limit orders standing on an /open/api exchange.

    \b
    validate → plan → apply for one pass; run keeps every job reconciled on its schedule.
    Jobs with `exchange.url: sandbox` use the embedded simulated exchange: no keys needed.
    """
    import logging

    from rebalancer import logs

    logs.setup("text", logging.WARNING)


for _command in (
    inspect.validate,
    jobs.plan,
    jobs.apply,
    jobs.run,
    jobs.cancel,
    inspect.pause,
    inspect.resume,
    inspect.history,
    status.status,
    sandbox.sandbox,
):
    main.add_command(_command)
