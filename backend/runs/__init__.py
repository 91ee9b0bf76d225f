"""The runs: the registry (registry.py, the face the routes call) and the rooms behind it."""
