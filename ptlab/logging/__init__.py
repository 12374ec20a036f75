"""What a run reports: console (Rich), TensorBoard and metrics.json — one metric spelling everywhere."""
