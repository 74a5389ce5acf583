"""The commands behind ``main.py``: each opens a workflow with the node catalogue, checks, runs
or describes it, and prints what a user needs. ``main.py`` only parses the command line.

Every module here imports torch, Qt and the heavy libraries inside the functions that need them,
so ``validate``, ``nodes`` and ``export`` start in well under a second.
"""
