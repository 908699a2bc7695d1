"""hakmem's benchmark runner, used by benchmarks/run_benchmarks.py.

Data (benchmarks/workloads.json, read by workloads.py): the modes, the workloads and their cases, the goals.
"""
