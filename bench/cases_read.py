"""The read cases of issue 13: loading a big numpy array or DataFrame in a
fresh process (zero-copy: a view of the blob's mapping), and a notebook
reading one artifact from each of 10,000 tasks. Each setup (untimed, once per
framework) makes the run; each repetition times one fresh reading process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cases import Case, Ctx, Metric, _c, datagen, last_json, metrics

MB = 1 << 20


def _floor(ctx: Ctx, module: str) -> float:
    """Wall time of a fresh interpreter that only imports `module` and
    cairn: the part of a load no artifact store can remove."""
    return ctx.measure([ctx.fw.python, "-c", f"import {module}; import {ctx.fw.name}"],
                       f"floor-{module}").wall_s


def _read_value(ctx: Ctx, flow: str, step: str, name: str, module: str) -> dict[str, Any]:
    expected = json.loads((ctx.dir / "expected.json").read_text())
    m = ctx.measure([ctx.fw.python, str(ctx.flow("read_value.py")), flow, step, name, module],
                    f"read-{name}")
    got = last_json(Path(m.extra["log"]).read_text(), m.extra["log"])
    ctx.expect(got["nbytes"] == expected["nbytes"] and abs(got["corner"] - expected["corner"]) < 1e-9,
               f"read {got}, expected {expected}")
    out = metrics(m)
    out.update(import_s=got["import_s"], load_s=got["load_s"], private_mb=got["private_mb"],
               load_private_mb=got["load_private_mb"], floor_s=_floor(ctx, module))
    return out


def _setup_array(ctx: Ctx, nbytes: int, flow: str) -> None:
    datagen(ctx, "npy", ctx.dir / "array.npy", nbytes)
    ctx.setup(ctx.fw.run_argv(ctx.flow(flow)), f"{flow}-setup")
    corner = datagen(ctx, "corner", ctx.dir / "array.npy", "4" if "frame" in flow else "1")
    (ctx.dir / "expected.json").write_text(json.dumps({"nbytes": nbytes, "corner": float(corner)}))
    (ctx.dir / "array.npy").unlink()


def read_numpy_setup(ctx: Ctx) -> None:
    _setup_array(ctx, ctx.sizes.numpy_bytes, "numpy_flow.py")


def read_numpy(ctx: Ctx) -> dict[str, Any]:
    return _read_value(ctx, "NumpyFlow", "start", "x", "numpy")


def read_dataframe_setup(ctx: Ctx) -> None:
    _setup_array(ctx, ctx.sizes.dataframe_bytes, "dataframe_flow.py")


def read_dataframe(ctx: Ctx) -> dict[str, Any]:
    return _read_value(ctx, "FrameFlow", "start", "frame", "pandas")


def _probes(ctx: Ctx) -> list[int]:
    """Foreach widths run by the setup: the full width for cairn; for
    Metaflow (~0.2 s a task to run) two narrower ones to extrapolate from,
    far enough apart that its per-task read cost shows above the noise."""
    return [ctx.sizes.tasks10k] if ctx.fw.name == "cairn" else list(ctx.sizes.tasks_probes)


def tasks10k_setup(ctx: Ctx) -> None:
    for n in _probes(ctx):  # oldest first: read_tasks.py picks the K-th oldest
        ctx.setup(ctx.fw.run_argv(ctx.flow("foreach.py"), *ctx.fw.foreach_args(n)), f"foreach{n}-setup")


def _read_tasks(ctx: Ctx, k: int, n: int) -> tuple[Any, dict[str, Any]]:
    m = ctx.measure([ctx.fw.python, str(ctx.flow("read_tasks.py")), str(k)], f"tasks{n}")
    got = last_json(Path(m.extra["log"]).read_text(), m.extra["log"])
    ctx.expect(got["tasks"] == n and got["total"] == n * (n - 1), f"read {got}, expected {n} tasks")
    return m, got


def tasks10k(ctx: Ctx) -> dict[str, Any]:
    probes = _probes(ctx)
    if len(probes) == 1:
        m, got = _read_tasks(ctx, 0, probes[0])
        out = metrics(m)
        out.update(import_s=got["import_s"], read_s=got["read_s"])
        return out
    # Metaflow: t = a + b*n through the two probes, at the full width.
    (n1, n2), walls = probes, []
    for k, n in enumerate(probes):
        walls.append(_read_tasks(ctx, k, n)[0].wall_s)
    slope = (walls[1] - walls[0]) / (n2 - n1)
    n = ctx.sizes.tasks10k
    return {"wall_s": walls[0] + slope * (n - n1), "extrapolated": True,
            "from": {str(n1): walls[0], str(n2): walls[1]}, "per_task_s": slope}


READ_CASES: dict[str, list[Case]] = {
    # Inserted after the case named by the key.
    "read": [
        Case("read-numpy", read_numpy, [
            Metric("wall_s", "read-numpy (1 GiB float64): whole process", "s", _c(0.1)),
            Metric("floor_s", "read-numpy floor: python -c 'import numpy, <framework>'", "s"),
            Metric("import_s", "read-numpy: import numpy + framework (inside)", "s"),
            Metric("load_s", "read-numpy: load (inside; cairn: map + verify digest)", "s"),
            Metric("private_mb", "read-numpy: private memory of the process after the load", "MB", _c(20.0)),
            Metric("load_private_mb", "read-numpy: private memory the load added", "MB", _c(20.0),
                   smoke_check=True),
        ], setup=read_numpy_setup),
        Case("read-dataframe", read_dataframe, [
            Metric("wall_s", "read-dataframe (256 MiB, 4 float64 columns): whole process", "s", _c(0.1)),
            Metric("floor_s", "read-dataframe floor: python -c 'import pandas, <framework>'", "s"),
            Metric("import_s", "read-dataframe: import pandas + framework (inside)", "s"),
            Metric("load_s", "read-dataframe: load (inside; cairn: map + verify digest)", "s"),
            Metric("private_mb", "read-dataframe: private memory of the process after the load", "MB"),
            Metric("load_private_mb", "read-dataframe: private memory the load added", "MB", _c(20.0),
                   smoke_check=True),
        ], setup=read_dataframe_setup),
    ],
    "list": [
        Case("tasks-10k", tasks10k, [
            Metric("wall_s", "tasks-10k: a value from each task of a 10,000-task foreach", "s", _c(1.0)),
        ], setup=tasks10k_setup, note="Metaflow extrapolated"),
    ],
}
