"""Hydra recipes for `python -m tinyzero.train +recipe=NAME` (one YAML each)."""
