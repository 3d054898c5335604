"""The local executor: `rzero run` drives the same plan as the operator, with subprocesses instead of Jobs.

executor.py (the loop), state.py (the state file), layout.py (where things live), processes.py (worker
subprocesses), progress.py (tqdm bar), table.py (`rzero status` table), commands.py (status/report CLI).
"""
