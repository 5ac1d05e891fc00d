"""Parameters and IncludeFile: types, callable defaults, CAIRN_RUN_<NAME>,
CLI errors before anything runs, stored with the run, read-only in steps."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

STEPS = ("start", "a", "b", "join", "end")


@pytest.fixture
def params_flow(runner):
    (runner.dir / "notes.txt").write_text("first notes\n")
    (runner.dir / "blob.bin").write_bytes(b"\x00\x01\xff")
    return runner.flow("params_flow.py")


def latest():
    from cairn import Flow

    return Flow("ParamFlow").latest_run


def seen_everywhere(run) -> list:
    """The parameter values each step read, join included."""
    return [getattr(run[s].task.data, f"seen_{s}") for s in STEPS]


def test_defaults_types_and_callable_default(runner, params_flow):
    runner.run(params_flow, "run", "--size", "4", check=True)
    run = latest()
    expected = (0.5, 3, False, "base", {"layers": [1, 2]}, len("ParamFlow") * 100 + len("seed"), "nobody", 4)
    assert seen_everywhere(run) == [expected] * len(STEPS)
    assert run["start"].task.data.types == {
        "alpha": "float", "epochs": "int", "verbose": "bool", "label": "str", "config": "dict",
        "seed": "int", "notes": "str", "blob": "bytes",
    }
    # Stored with the run: the client sees them as run.parameters and as artifacts.
    assert run.parameters["alpha"] == 0.5
    assert run.parameters["size"] == 4
    assert run.parameters["seed"] == 904
    assert run.data.alpha == 0.5
    assert run.data.config == {"layers": [1, 2]}


def test_command_line_values(runner, params_flow):
    runner.run(params_flow, "run", "--size", "2", "--alpha", "0.25", "--epochs", "7", "--verbose",
               "--label", "x y", "--config", '{"a": [1, 2]}', "--seed", "5", "--user-name", "bob",
               check=True)
    run = latest()
    expected = (0.25, 7, True, "x y", {"a": [1, 2]}, 5, "bob", 2)
    assert seen_everywhere(run) == [expected] * len(STEPS)
    assert run.parameters["user-name"] == "bob"
    assert run.data.user_name == "bob"


def test_environment_values_and_the_command_line_wins(runner, params_flow):
    env = {"CAIRN_RUN_ALPHA": "0.75", "CAIRN_RUN_USER_NAME": "carol", "CAIRN_RUN_EPOCHS": "9",
           "CAIRN_RUN_VERBOSE": "yes", "CAIRN_RUN_SIZE": "1"}
    runner.run(params_flow, "run", "--epochs", "11", env=env, check=True)
    run = latest()
    assert run.data.seen_end == (0.75, 11, True, "base", {"layers": [1, 2]}, 904, "carol", 1)


@pytest.mark.parametrize("args, message", [
    (["--size", "x"], "Bad parameter: parameter 'size' expects int, got 'x'"),
    (["--size", "1", "--alpha", "fast"], "Bad parameter: parameter 'alpha' expects float, got 'fast'"),
    (["--size", "1", "--epochs", "2.5"], "Bad parameter: parameter 'epochs' expects int, got '2.5'"),
    (["--size", "1", "--verbose", "maybe"], "Bad parameter: parameter 'verbose' expects bool, got 'maybe'"),
    (["--size", "1", "--config", "{nope"], "Bad parameter: parameter 'config' expects JSON, got '{nope'"),
    ([], "Bad parameter: missing required parameter 'size': pass --size VALUE"),
    (["--size", "1", "--notes", "missing.txt"], "Bad parameter: IncludeFile 'notes': cannot read"),
])
def test_bad_values_are_clear_cli_errors_before_anything_runs(runner, params_flow, args, message):
    proc = runner.run(params_flow, "run", *args)
    assert proc.returncode == 1
    assert proc.stderr.startswith(message), proc.stderr
    assert "starting" not in proc.stdout
    assert not (runner.root / "cairn.db").exists()  # no run was recorded


def test_bad_environment_value_is_a_clear_error(runner, params_flow):
    proc = runner.run(params_flow, "run", "--size", "1", env={"CAIRN_RUN_EPOCHS": "lots"})
    assert proc.returncode == 1
    assert proc.stderr.startswith("Bad parameter: parameter 'epochs' expects int, got 'lots'")


def test_assigning_a_parameter_in_a_step_fails_the_task(runner, params_flow):
    proc = runner.run(params_flow, "run", "--size", "1", "--mutate")
    assert proc.returncode == 1
    assert ("AttributeError: Cannot set self.alpha in step 'start': Flow level attributes and "
            "Parameters are not modifiable") in proc.stdout
    assert not latest().successful


def test_include_file_content_is_versioned_with_each_run(runner, params_flow):
    runner.run(params_flow, "run", "--size", "1", check=True)
    first = latest()
    (runner.dir / "notes.txt").write_text("second notes, longer\n")
    (runner.dir / "other.txt").write_text("other file\n")
    runner.run(params_flow, "run", "--size", "1", check=True)
    second = latest()
    runner.run(params_flow, "run", "--size", "1", "--notes", "other.txt", check=True)
    third = latest()
    assert first.data.notes == "first notes\n"
    assert first.data.notes_len == len("first notes\n")
    assert first.data.blob == b"\x00\x01\xff"
    assert second.data.notes == "second notes, longer\n"
    assert third.data.notes == "other file\n"
    from cairn import Run

    assert Run(first.pathspec).data.notes == "first notes\n"  # the old run keeps its content


def test_help_lists_parameters(runner, params_flow):
    proc = runner.run(params_flow, "run", "--help", check=True)
    assert "--alpha ALPHA" in proc.stdout
    assert "learning rate" in proc.stdout
    assert "--user-name USER_NAME" in proc.stdout
