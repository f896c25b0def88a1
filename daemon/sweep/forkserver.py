"""Imported by the sweep's fork server (`multiprocessing.set_forkserver_preload`): warms it for replays,
so the workers it forks start with the replay stack imported and the calendar built (see warm.py)."""

from daemon.sweep.warm import warm

warm()
