"""Plumbing shared by every package: atomic writes, frozen-config helpers, CPU settings, the
model-spec base, the packed-weights format and the dataset registry.

Nothing here imports compress, lm, nmt, hwsim or reports: they all stand on it.
"""
