"""Records every task payload a cairn worker receives, for
bench/profile/task_cost.py. Enable with
    PYTHONPATH=bench/profile/hook HOOK_PAYLOADS=/tmp/payloads.jsonl python flow.py run ...
It wraps cairn.task.preload, which the worker calls with each parsed payload
before forking; nothing else changes."""

import json
import os

_OUT = os.environ.get("HOOK_PAYLOADS")
if _OUT:
    import cairn.task as _task

    _orig = _task.preload

    def _preload(payload, store):
        with open(_OUT, "a") as f:
            f.write(json.dumps(payload) + "\n")
        return _orig(payload, store)

    _task.preload = _preload
