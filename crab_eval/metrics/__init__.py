"""Metric kernels shared by task adapters: the official algorithms, vectorised (numpy), with no task knowledge."""
