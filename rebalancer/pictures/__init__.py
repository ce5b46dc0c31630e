"""Pictures of a ladder: the plan as a self-contained HTML page and the daemon's live status pages (SVG, no script)."""
