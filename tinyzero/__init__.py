"""tinyzero: reproduce DeepSeek R1-Zero on toy reasoning tasks."""
