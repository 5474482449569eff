"""AWD-LSTM language models (ptbc, ptbw, enwik8)."""
