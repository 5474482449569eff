"""Spiking LSTM cells, the spiking translator and the surname classifier."""
