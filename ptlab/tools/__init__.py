"""Tools around training runs: the learning-rate range test (``ptlab lr-find``) and reports (``ptlab report``)."""
