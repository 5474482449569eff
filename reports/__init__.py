"""Comparison tables and plots built from run records."""
