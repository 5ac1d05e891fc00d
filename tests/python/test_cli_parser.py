"""A flow's command line builds the options of the one command it runs:
help, errors and parsing read exactly as with every command built, and a
command that prints no help imports no help formatter (shutil)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
from cairn.cli import build_parser
from flows.plain_flow import PlainFlow

COMMANDS = ["run", "resume", "check", "show", "ray-node-worker", "step", "logs", "dump", "card", "tag", "spin"]

RESERVED = """
from cairn import FlowSpec, Parameter, step


class ReservedFlow(FlowSpec):
    tag = Parameter("tag", default="x")

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ReservedFlow()
"""


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_only_the_named_command_gets_its_options():
    built = _commands(build_parser(PlainFlow, ["--datastore-root", "x", "--config", "a", "b", "check"]))
    assert set(built) == set(COMMANDS)  # every command is still listed
    assert "--tag" not in built["run"]._option_string_actions
    assert "--format" not in built["show"]._option_string_actions
    assert "--format" in _commands(build_parser(PlainFlow, ["--quiet", "show"]))["show"]._option_string_actions


@pytest.mark.parametrize("command", COMMANDS)
def test_each_commands_help_and_usage_read_as_with_every_command_built(command):
    full = _commands(build_parser(PlainFlow))[command]
    alone = _commands(build_parser(PlainFlow, [command, "--help"]))[command]
    assert alone.format_help() == full.format_help()
    assert build_parser(PlainFlow, [command]).format_help() == build_parser(PlainFlow).format_help()


@pytest.mark.parametrize("argv", [["--help"], ["nope"], ["--with"], ["-h", "run"], ["--config", "a"], []])
def test_a_line_without_a_known_command_builds_every_command(argv):
    built = _commands(build_parser(PlainFlow, argv))
    assert "--tag" in built["run"]._option_string_actions and "--format" in built["show"]._option_string_actions


def _imported(argv: list[str], runner) -> set[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=runner.dir,
                          env=runner.env, capture_output=True, text=True, check=True)
    return {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}


def test_check_imports_no_help_formatter(runner):
    flow = runner.flow("plain_flow.py")
    # What the interpreter loads before any script (a site .pth may import
    # shutil itself) is not the CLI's doing.
    at_start = _imported(["-c", "pass"], runner)
    imported = _imported([str(flow), "check"], runner) - at_start
    assert "argparse" in imported and "shutil" not in imported


def test_a_reserved_parameter_name_fails_every_command(runner):
    flow = runner.write("reserved.py", RESERVED)
    for command in ("run", "check", "show"):
        proc = runner.run(flow, command)
        assert proc.returncode == 1
        assert "Parameter name 'tag' is a reserved word" in proc.stderr, (command, proc.stderr)


def test_package_suffixes_choose_what_the_code_package_holds(monkeypatch, tmp_path):
    from cairn.backends.package import package_files, suffixes_from_env
    from cairn.cli.options import HabitError, check_top_level

    monkeypatch.delenv("CAIRN_PACKAGE_SUFFIXES", raising=False)
    args = build_parser(PlainFlow, ["--package-suffixes", ".txt, .json", "check"]).parse_args(
        ["--package-suffixes", ".txt, .json", "check"])
    check_top_level(args)
    for name in ("flow.py", "notes.txt", "conf.json", "data.csv"):
        (tmp_path / name).write_text("x")
    packaged = [p for p, _ in package_files(str(tmp_path / "flow.py"), suffixes_from_env())]
    assert packaged == ["conf.json", "flow.py", "notes.txt"]

    bad = build_parser(PlainFlow, ["--package-suffixes", "txt", "check"]).parse_args(
        ["--package-suffixes", "txt", "check"])
    with pytest.raises(HabitError, match="--package-suffixes=txt: expected file suffixes"):
        check_top_level(bad)
