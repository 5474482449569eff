"""Systolic-array cost simulator. Imports no torch."""
