"""Column-combining kernels: pure functions of numpy data."""
