"""``rebalancer sandbox``: serve the simulated exchange that ``url: sandbox`` jobs use."""

from __future__ import annotations

import click

from rebalancer.errors import ConfigError
from rebalancer.state.paths import state_dir


@click.command()
@click.option("--port", default=8790, show_default=True, type=click.IntRange(0, 65535), help="Loopback port (0: any).")
@click.option("--seed", default=7, show_default=True, type=int, help="Seed of a fresh world's market.")
@click.option("--reset", is_flag=True, help="Start a fresh world instead of the saved one.")
@click.option("--prefix", default="", help="Serve /open/api under this path prefix, e.g. /exchange-open-api.")
@click.option(
    "--sign",
    "sign_mode",
    default="any",
    show_default=True,
    type=click.Choice(["any", "md5", "hmac-sha256"]),
    help="Signatures accepted: either, or only one.",
)
@click.option(
    "--legacy-paths",
    is_flag=True,
    help="Serve only the old paths (new_order, all_order), like deployments that document no v2 paths.",
)
@click.option(
    "--stream-port",
    type=click.IntRange(0, 65535),
    help="Loopback port of the market stream (ws://.../kline-api/ws) [--port + 1; any with --port 0].",
)
@click.option(
    "--ping-every",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0.05, 3600),
    help="Seconds between the stream's pings; a client that does not pong in as long is cut.",
)
def sandbox(
    port: int,
    seed: int,
    reset: bool,
    prefix: str,
    sign_mode: str,
    legacy_paths: bool,
    stream_port: int | None,
    ping_every: float,
) -> None:
    """Serve the simulated exchange (the same world `url: sandbox` jobs use) on 127.0.0.1 until Ctrl-C, with its
    market stream beside it (both URLs are printed)."""
    from rebalancer.sandbox.app import check_prefix
    from rebalancer.sandbox.host import serve_sandbox

    try:
        prefix = check_prefix(prefix)
    except ValueError as error:
        raise ConfigError(f"--prefix: {error}") from None
    if stream_port is None:
        stream_port = port + 1 if 0 < port < 65535 else 0
    serve_sandbox(
        state_dir(),
        port=port,
        seed=seed,
        reset=reset,
        echo=click.echo,
        prefix=prefix,
        sign=sign_mode,
        legacy_paths=legacy_paths,
        stream_port=stream_port,
        ping_every=ping_every,
    )
