"""Workloads: what the original benchmarks do, as operations on the kernels and the machine."""
