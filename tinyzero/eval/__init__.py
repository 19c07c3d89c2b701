"""Evaluation of checkpoints: accuracy, pass@k and s1-style budget forcing."""
