"""Data validation gates: the Great Expectations suite of the curated features and its runner."""
