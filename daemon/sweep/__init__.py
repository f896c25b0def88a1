"""`tradingd sweep`: many deterministic replays (Part 7's `run_replay`) over a grid of config overrides,
on local worker processes or a Dask cluster, with a result cache, walk-forward tests and a report.

    grid.py         the grid file: axes of config overrides, every cell validated before anything runs
    jobs.py         one replay to run (a picklable `Job`), its cache key, the worker function
    cache.py        finished replays on disk by key: a rerun skips them
    runners.py      local worker processes (lost workers' cells redone) or a Dask cluster
    objective.py    the figure the grid is ranked by, and who may win (min trades)
    walkforward.py  train/test folds, best cell in sample, replayed out of sample, the warning rule
    plan.py         the sweep itself: validate, plan jobs, run, collect
    report.py       cells.csv, walkforward.csv, sweep.json, report.html (heatmaps inline)

See docs/sweep.md and docs/decisions/sweep.md.
"""
