"""Datasets: each builder returns a :class:`ptlab.data.loaders.Data` with train/val/test batches."""
