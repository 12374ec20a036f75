"""Objectives: what a batch means — its loss for training and its predictions for metrics."""
