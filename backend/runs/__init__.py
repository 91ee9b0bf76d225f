"""The runs: the registry (registry.py, the face the routes call) and the rooms behind it; and
what a run is made from and started through: word lists (datasets.py), names (names.py), bursts
of starts kept bounded (starts.py), a run as a script (code.py)."""
