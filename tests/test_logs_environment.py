"""Which environment values count as secrets: credential-like names do, the shell's working directory does not."""

from __future__ import annotations

from rebalancer.logs import redact, register_environment_secrets


def test_the_working_directory_is_not_a_secret_but_a_password_is() -> None:
    register_environment_secrets(
        {"PWD": "/srv/rebalancer-jobs", "OLDPWD": "/srv/previous-dir", "DB_PASSWORD": "hunter22-not-shown"}
    )
    assert (
        redact("Error: /srv/rebalancer-jobs/btcusdt.yaml:3:1: bad")
        == "Error: /srv/rebalancer-jobs/btcusdt.yaml:3:1: bad"
    )
    assert "/srv/previous-dir" in redact("moved from /srv/previous-dir")
    assert "hunter22-not-shown" not in redact("login with hunter22-not-shown failed")
