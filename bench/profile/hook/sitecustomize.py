"""Profiling hooks for a cairn run, enabled by environment variables, with
nothing in cairn changed:

    PYTHONPATH=bench/profile/hook HOOK_PAYLOADS=/tmp/p.jsonl python flow.py run ...
        records every task payload the worker receives (for task_cost.py and
        child_faults.py), by wrapping cairn.runtime.task_data.preload, which the worker
        calls with each parsed payload before forking.
    PYTHONPATH=bench/profile/hook HOOK_RUSAGE=/tmp/ru.txt python flow.py run ...
        appends the worker's own CPU and page faults, and those of the task
        processes it reaped, when the worker exits.
"""

import base64
import json
import os
import resource

if os.environ.get("HOOK_PAYLOADS"):
    import cairn.runtime.task_data as _task

    _orig_preload = _task.preload

    def _preload(payload, *args, **kwargs):
        with open(os.environ["HOOK_PAYLOADS"], "a") as f:
            # Small blobs arrive decoded as {digest: bytes}; task_cost.py
            # turns these back into bytes.
            f.write(json.dumps(payload, default=lambda b: {"b64": base64.b64encode(b).decode()}) + "\n")
        return _orig_preload(payload, *args, **kwargs)

    _task.preload = _preload

if os.environ.get("HOOK_RUSAGE"):
    import cairn.runtime.worker as _worker

    _orig_serve = _worker.serve

    def _serve(*args, **kwargs):
        me, real_exit = os.getpid(), os._exit

        def _exit(code):
            # The worker leaves with os._exit; its children inherit this
            # wrapper, so only the worker itself reports.
            if os.getpid() == me:
                own = resource.getrusage(resource.RUSAGE_SELF)
                kids = resource.getrusage(resource.RUSAGE_CHILDREN)
                with open(os.environ["HOOK_RUSAGE"], "a") as f:
                    f.write(f"worker: user {own.ru_utime:.2f} s sys {own.ru_stime:.2f} s "
                            f"minflt {own.ru_minflt}; tasks: user {kids.ru_utime:.2f} s "
                            f"sys {kids.ru_stime:.2f} s minflt {kids.ru_minflt}\n")
            real_exit(code)

        os._exit = _exit
        return _orig_serve(*args, **kwargs)

    _worker.serve = _serve
