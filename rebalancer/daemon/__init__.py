"""The daemon: schedules passes (APScheduler 3.x), supervises job files and signals, serves metrics and health."""
