"""Find and show the aha moment in training rollout dumps."""
