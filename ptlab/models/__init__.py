"""Models: each file is the formula of one chapter of the book."""
