"""A run as its viewers get it: the live state a snapshot needs and its fan-out (channel.py),
the overview of every run (overview.py), the loss history in bounded memory (history.py),
trainer events as messages (messages.py), the diagnostics' view (diagview.py, diagread.py) and
the history as a file (export.py). Knows nothing of the runs' registry, which publishes through it."""
