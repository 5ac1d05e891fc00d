"""Bad input gets a one-line error that names it, never a traceback or a
silent loss (issue 15, item 9)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

HELLO = """
from cairn import FlowSpec, JSONType, Parameter, step

class HelloFlow(FlowSpec):
    config = Parameter("config", type=JSONType, default="{}")

    @step
    def start(self):
        print("hello")
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    HelloFlow()
"""


def refused(proc: subprocess.CompletedProcess, headline: str, text: str) -> str:
    """Asserts a one-line error (exit 1, no traceback) with `text`; returns it."""
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    message = proc.stderr.strip()
    assert message.startswith(f"{headline}: ") and text in message, message
    return message


@pytest.fixture
def hello(runner) -> Path:
    return runner.write("hello.py", HELLO)


def test_a_step_name_longer_than_a_file_name_is_refused_with_its_line(runner):
    name = "s" * 300
    flow = runner.write("long.py", f"""
        from cairn import FlowSpec, step

        class LongFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.{name})

            @step
            def {name}(self):
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            LongFlow()
    """)
    proc = runner.run(flow, "run")
    message = refused(proc, "Validity checker found an issue",
                      "the name is 300 bytes long; step names are at most 255 bytes")
    assert "long.py:10: step" in message  # its def


def test_tags_and_user_names_that_are_not_utf8_are_refused(runner, hello):
    bad = subprocess.run([sys.executable, str(hello), "run", "--tag", b"caf\xe9"], cwd=runner.dir,
                         env=runner.env, capture_output=True, text=True)
    refused(bad, "cairn error", "is not valid UTF-8")
    env = {k.encode(): v.encode() for k, v in runner.env.items()}
    env[b"CAIRN_USER"] = b"\xff\xfeal"
    bad = subprocess.run([sys.executable, str(hello), "run"], cwd=runner.dir, env=env,
                         capture_output=True, text=True)
    refused(bad, "cairn error", "the user name ($CAIRN_USER or $USER) is not valid UTF-8")
    assert not (runner.root / "cairn.db").exists()


def test_run_ids_too_large_for_the_datastore_are_not_found(runner, hello):
    runner.run(hello, "run", check=True)
    huge = "12345678901234567890"
    refused(runner.run(hello, "dump", f"{huge}/start"), "Not found", huge)
    refused(runner.run(hello, "logs", f"{huge}/start"), "cairn error", huge)
    refused(runner.run(hello, "logs", huge, "--engine"), "cairn error", huge)


def test_a_json_parameter_nested_too_deeply_is_a_parameter_error(runner, hello):
    deep = "[" * 5000 + "]" * 5000
    refused(runner.run(hello, "run", "--config", deep), "Bad parameter", "nested too deeply")


def test_dump_to_a_file_that_cannot_be_written_says_so(runner, hello):
    runner.run(hello, "run", check=True)
    refused(runner.run(hello, "dump", "1/start", "--file", "/nonexistent/dir/out.pkl"), "cairn error",
            "dump --file: cannot write /nonexistent/dir/out.pkl: No such file or directory")


@pytest.mark.parametrize("tag", ["", "two\nlines", "x" * 120_000])
def test_run_refuses_the_tags_tag_add_refuses_with_the_same_message(runner, hello, tag):
    run = runner.run(hello, "run", "--tag", tag)
    message = refused(run, "cairn error", "tag")
    assert not runner.root.exists()  # refused before anything was written
    runner.run(hello, "run", check=True)
    assert refused(runner.run(hello, "tag", "add", "--run-id", "1", tag), "cairn error", "tag") == message


def test_tags_may_not_forge_system_tags(runner, hello):
    for tag in ("runtime:local", "user:alice"):
        refused(runner.run(hello, "run", "--tag", tag), "cairn error", "looks like a system tag")
    runner.run(hello, "run", check=True)
    refused(runner.run(hello, "tag", "add", "--run-id", "1", "user:alice"), "cairn error",
            "looks like a system tag")
    # The run's own system tag: adding it does nothing, as in Metaflow.
    out = runner.run(hello, "tag", "add", "--run-id", "1", "runtime:local", check=True).stdout
    assert "user tags:   (none)" in out


def test_an_unknown_launcher_is_refused_with_the_choices(runner, hello):
    refused(runner.run(hello, "run", env={"CAIRN_LAUNCHER": "garbage"}), "Bad setting",
            "CAIRN_LAUNCHER is 'garbage'; expected one of worker, spawn")


def _without_root_powers() -> list[str]:
    """A command prefix under which file modes bind this user as they bind
    anyone: for root, `setpriv` drops the capabilities that override them."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


@pytest.fixture
def restore_modes(runner):
    yield
    for p in [runner.root, *runner.root.rglob("*")]:
        p.chmod(0o700 if p.is_dir() else 0o600)


def read_runs(runner, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*_without_root_powers(), sys.executable, *args], cwd=runner.dir, env=runner.env,
                          capture_output=True, text=True)


def test_a_reader_who_cannot_write_reads_an_idle_datastore(runner, hello, restore_modes):
    runner.run(hello, "run", check=True)
    assert not (runner.root / "cairn.db-wal").exists()  # idle: the engine checkpointed and left
    # As for another user, or on a read-only file system: nothing can be created.
    for p in [runner.root, *runner.root.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    proc = read_runs(runner, "-c", "from cairn import Flow; print([r.status for r in Flow('HelloFlow').runs()])")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['succeeded']"
    proc = read_runs(runner, "-m", "cairn", "runs")
    assert proc.returncode == 0 and proc.stdout.startswith("HelloFlow/1\tsucceeded\t"), proc.stderr


def test_a_datastore_this_user_may_not_read_says_permission_denied(runner, hello, restore_modes):
    runner.run(hello, "run", check=True)
    runner.root.chmod(0o000)  # as a 0700 datastore is to everyone but its owner
    refused(read_runs(runner, "-m", "cairn", "runs"), "Datastore error", "permission denied")
    proc = read_runs(runner, "-c", "from cairn import Flow; Flow('HelloFlow')")
    assert "permission denied" in proc.stderr and "run a flow first" not in proc.stderr
