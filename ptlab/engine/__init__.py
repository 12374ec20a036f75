"""The training engine: one loop, checkpoints, precision and device handling."""
