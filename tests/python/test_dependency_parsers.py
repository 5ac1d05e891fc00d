"""Metaflow's dependency-file parsers: requirements_txt_parser,
pyproject_toml_parser and conda_environment_yml_parser give
{"packages": {...}, "python": ...} as Metaflow's do (the expected values
below are what Metaflow 2.19 returns for the same text), refuse what it
refuses with its messages, and work as a Config's parser."""

from __future__ import annotations

import pytest
from cairn import (
    CairnException,
    Config,
    conda_environment_yml_parser,
    pyproject_toml_parser,
    requirements_txt_parser,
)
from cairn.config import read_configs

REQUIREMENTS = """\
# pinned for the nightly job
numpy==1.26
pandas>=2  # frames
python>=3.10
requests[security]
mylib @ git+https://example.com/mylib.git
torch ~= 2.1
-e file:.
"""


def test_requirements_txt():
    assert requirements_txt_parser(REQUIREMENTS) == {
        "packages": {"numpy": "1.26", "pandas": ">=2", "requests[security]": "",
                     "mylib@git+https://example.com/mylib.git": "", "torch": "~=2.1"},
        "python": ">=3.10",
    }
    assert requirements_txt_parser("") == {"packages": {}, "python": None}


def test_pyproject_toml():
    text = '[project]\nname = "x"\nrequires-python = ">=3.9"\ndependencies = ["numpy>=1.2", "scipy", "a[x]==1"]\n'
    assert pyproject_toml_parser(text) == {"packages": {"numpy": ">=1.2", "scipy": "", "a[x]": "1"}, "python": ">=3.9"}
    assert pyproject_toml_parser('[tool.x]\ny = 1\n') == {"packages": {}, "python": None}


def test_conda_environment_yml():
    text = ("name: x\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - numpy=1.26\n"
            "  - scipy  # sci\n  - pandas>=2\nprefix: /opt/env\n")
    assert conda_environment_yml_parser(text) == {
        "packages": {"numpy": "1.26", "scipy": "", "pandas": ">=2"}, "python": "3.11"}


@pytest.mark.parametrize(("parser", "text", "message"), [
    (requirements_txt_parser, "numpy; python_version<'3'", "Environment markers"),
    (requirements_txt_parser, "python>=3\npython<4", "Multiple Python version specs not allowed: 'python<4'"),
    (requirements_txt_parser, "@@@", "Not a valid PEP 508 requirement: '@@@'"),
    (pyproject_toml_parser, "[project\n", "Not valid TOML"),
    (pyproject_toml_parser, '[project]\nrequires-python = "3.9"\ndependencies = ["python>=3.10"]\n',
     "Multiple Python version specs"),
    (conda_environment_yml_parser, "dependencies:\n  - pip:\n", "Unsupported subsection 'pip:'"),
    (conda_environment_yml_parser, "dependencies:\n  - numpy 1.2 !\n", "not a valid conda package specifier"),
])
def test_bad_files_are_value_errors(parser, text, message):
    with pytest.raises(CairnException) as e:
        parser(text)
    assert type(e.value).headline == "Value error" and message in str(e.value)


def test_as_a_configs_parser(tmp_path, monkeypatch):
    (tmp_path / "requirements.txt").write_text("numpy==1.26\npython==3.11\n")
    monkeypatch.chdir(tmp_path)

    class Holder:
        deps = Config("deps", default="requirements.txt", parser=requirements_txt_parser)

    read_configs(Holder)
    assert Holder.deps._value.to_dict() == {"packages": {"numpy": "1.26"}, "python": "3.11"}


def test_without_packaging_the_parser_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "packaging.requirements", None)  # as if not installed
    with pytest.raises(CairnException, match="pip install packaging"):
        requirements_txt_parser("numpy==1.26\n")
