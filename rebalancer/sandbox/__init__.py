"""The simulated exchange: a faithful /open/api server for demos, trying job files without money, and tests.

``engine`` holds the world (symbols, accounts, orders, market, clock), ``world`` saves and loads it, ``app``
is the Werkzeug application, ``server`` serves it over HTTP, ``faults`` switches on failures and rate limits.
Importing this package imports nothing else, so the CLI stays quick; import the module you need.
"""
