"""The command line: click commands, the human renderings of plans and results, and the one exit-code map."""
