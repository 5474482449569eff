"""LSTMPack: passes over weight matrices (prune, column-combine, quantize) and the CLI."""
