"""Examples of LSTMPack on models of your own (run from the repository root)."""
