"""Reproduction machinery: run the experiment notebooks and summarise paper against simulation.

    registry    the experiments (names are a contract), their notebooks, titles, sources
    params      parameters read from each notebook's `parameters` cell; -p KEY=VALUE checking
    execute     one notebook through papermill: kernel cwd DIR/NAME, timeouts, result checks
    progress    start/step/finish display (steps come from lab.results.step)
    summary     DIR/summary.json and DIR/summary.md
    cli         `microlab list` and `microlab reproduce`

A notebook author needs only lab.results (Result, published, step) and the conventions in
lab/runner/params.py (the parameters cell) and lab/runner/execute.py (where files go).
"""
from .registry import EXPERIMENTS, NAMES, Experiment
from .execute import Job, Outcome, Status, run_job

__all__ = ["EXPERIMENTS", "NAMES", "Experiment", "Job", "Outcome", "Status", "run_job"]
