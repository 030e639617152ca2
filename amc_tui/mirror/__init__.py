"""Mirrors: a run's history copied to TensorBoard and Weights & Biases ([mirror] config).

Torch-free, so the trainer (live, from a background thread) and `amc-tui mirror` (backfill,
from events.jsonl and the exports) turn the same events into the same calls.
"""
