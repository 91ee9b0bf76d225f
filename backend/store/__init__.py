"""The store: one SQLite database and checkpoint files under the home directory."""
