# SPDX-License-Identifier: MIT
"""hakmem's benchmark runner, used by benchmarks/run_benchmarks.py.

Data (benchmarks/workloads.json, read by workloads.py): the modes, the workloads and their cases, the goals.
Running: allocators.py (which allocators are installed), launch.py (one program run through bench_launch),
run.py (the plan and the interleaved repetitions, then Google Benchmark), results.py (what the runs gave).
Reporting: summary.py (ratios to the reference column), tables.py (Markdown), goals.py (the verdicts of the
data's goals), charts.py (gnuplot SVG), report.py (report.md, runs.csv, summary.csv). fmt.py and machine.py
hold the number formats and the facts about the machine and the source tree.
"""
