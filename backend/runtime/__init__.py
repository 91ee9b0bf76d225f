"""Where a run trains: a worker process per run, or a Ray actor; one handle interface."""
