"""The server process: application, registry of runs, fan-out to viewers, settings."""
