"""The ``rebalancer`` command group: global options, the command list, and the one map from errors to exit codes.

Commands live in modules by what they do (``jobs``, ``inspect``, ``status``, ``sandbox``, ``scaffold``, ``record``):
parse, call and print. ``Cli`` is the only place an exception becomes a message and an exit code: 0 ok, 1 every
error (usage errors and a declined apply included), 2 only for ``plan --detailed-exitcode`` with changes (the
command exits with it itself).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from rebalancer import __version__, logs, notify
from rebalancer.cli import inspect, jobs, record, replay, sandbox, scaffold, status
from rebalancer.cli.shared import log_level
from rebalancer.errors import JobFileError, RebalancerError
from rebalancer.state.paths import use_state_dir

USAGE_EXIT_CODE = 1  # click's own is 2, which `plan --detailed-exitcode` means as "changes pending"
INTERRUPTED_EXIT_CODE = 130  # the shell's code for a process stopped by SIGINT


class Cli(click.Group):
    """A click group that turns the exception tree into one-line messages and its exit codes, never a traceback."""

    def main(  # one signature for click's two overloads
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; exits 0 on success and 1 for usage errors (click would exit 2).

        Webhook events the command caused (``notify``) are delivered before it exits, within their deadline.
        """
        try:
            return self._main(args, prog_name, complete_var, standalone_mode, **extra)
        finally:
            notify.close_shared()

    def _main(
        self,
        args: Sequence[str] | None,
        prog_name: str | None,
        complete_var: str | None,
        standalone_mode: bool,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(USAGE_EXIT_CODE)
        except click.UsageError as exc:
            _usage_error(exc)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Error: aborted; nothing was sent", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; expected failures become ``Error: …`` (or file:line:col lines) on stderr."""
        try:
            return super().invoke(ctx)
        except JobFileError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            ctx.exit(exc.exit_code)
        except RebalancerError as exc:
            from rebalancer.logs import redact

            click.echo(f"Error: {redact(str(exc))}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(INTERRUPTED_EXIT_CODE)


def _usage_error(exc: click.UsageError) -> NoReturn:
    """The error on one ``Error:`` line, then the usage and where to find help."""
    click.echo(f"Error: {exc.format_message()}", err=True)
    if exc.ctx is not None:
        click.echo(exc.ctx.get_usage(), err=True)
        click.echo(f"Try '{exc.ctx.command_path} --help' for help.", err=True)
    sys.exit(USAGE_EXIT_CODE)


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="rebalancer")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    help="Where the state store and the sandbox world live (overrides $REBALANCER_STATE_DIR).",
)
@click.option("-v", "--verbose", count=True, help="Log more: each -v one level (warnings by default; `run` logs info).")
@click.option("-q", "--quiet", count=True, help="Log less: each -q one level.")
def main(state_dir: str | None, verbose: int, quiet: int) -> None:
    """Keep a declared ladder of limit orders standing on an /open/api exchange.

    \b
    validate → plan → apply for one pass; run keeps every job reconciled on its schedule.
    Jobs with `exchange.url: sandbox` use the embedded simulated exchange: no keys needed.
    Start with `rebalancer init --out job.yaml`.
    """

    if state_dir:
        use_state_dir(state_dir)
    logs.setup("text", log_level())


for _command in (
    scaffold.init,
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
    record.record,
    replay.replay,
):
    main.add_command(_command)
