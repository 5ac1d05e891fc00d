"""Running a flow: run and resume set-up (run.py), the worker that forks a
process per task (worker.py), the task body (task.py, task_data.py,
step_plan.py, step_call.py), `spin` (spin.py) and parallel_map
(multicore.py). Nothing here imports the command line (cairn.cli) or the
client's display."""
