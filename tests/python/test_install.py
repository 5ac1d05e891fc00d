"""Installing cairn as a user does: the wheel from `scripts/dev.sh wheel` into a
fresh virtual environment outside the checkout (the README's commands as
written), what the wheel links to, and the source build's dependency check."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import EXAMPLES, REPO

# What a manylinux wheel may leave to the system (auditwheel's policies allow
# these and a few more): everything else must be linked in or vendored.
SYSTEM_LIBRARIES = {"libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1", "libpthread.so.0",
                    "libdl.so.2", "librt.so.1", "ld-linux-x86-64.so.2"}
# Copied into the wheel by auditwheel ({fmt} and spdlog are compiled in, header-only).
VENDORED = {"libsqlite3", "libzstd", "libxxhash"}


def readme_blocks(section: str) -> list[str]:
    """The fenced bash blocks of one `## ` section of the README."""
    text = (REPO / "README.md").read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", body, re.DOTALL)


def clean_env(**extra: str) -> dict[str, str]:
    """This interpreter's folder first on PATH (so `python` is this version), no venv active."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CAIRN_HOME")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def bash(script: str, cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{script}\nexit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel() -> Path:
    """`scripts/dev.sh wheel` for this interpreter (incremental: the dev build's folder)."""
    bash("scripts/dev.sh wheel", REPO, clean_env(PYTHON=sys.executable), timeout=1800)
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    (found,) = (REPO / "dist").glob(f"cairn_flow-*-{tag}-{tag}-manylinux_*_x86_64.whl")
    return found


def needed_libraries(path: Path) -> set[str]:
    from elftools.elf.dynamic import DynamicSection  # installed with auditwheel
    from elftools.elf.elffile import ELFFile

    with path.open("rb") as f:
        elf = ELFFile(f)
        return {tag.needed for section in elf.iter_sections() if isinstance(section, DynamicSection)
                for tag in section.iter_tags() if tag.entry.d_tag == "DT_NEEDED"}


@pytest.mark.wheel
def test_wheel_links_only_system_libraries_and_what_it_carries(wheel: Path,
                                                               tmp_path: Path) -> None:
    shown = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(wheel)],
                           capture_output=True, text=True, check=True).stdout
    policy = re.search(r'consistent with the following platform tag: "(manylinux_\d+_\d+_x86_64)"',
                       " ".join(shown.split()))
    assert policy, shown
    assert policy.group(1) in wheel.name
    # The glibc floor the README promises: a newer symbol (std::condition_variable::wait
    # of GCC 12's libstdc++ once made it manylinux_2_35) must be a decision, not an accident.
    (promised,) = set(re.findall(r"manylinux_2_\d+_x86_64", (REPO / "README.md").read_text()))
    assert policy.group(1) == promised, f"the wheel is {policy.group(1)}, the README says {promised}"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(tmp_path)
        names = set(z.namelist())
    # Every file of the package ships, data too (the UI's static files, stubs).
    package = REPO / "python"
    missing = [str(p.relative_to(package)) for p in package.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".so")
               and str(p.relative_to(package)) not in names]
    assert not missing, missing
    elves = [p for p in tmp_path.rglob("*.so*") if p.is_file()]
    extension = [p for p in elves if p.parent.name == "cairn" and p.name.startswith("_core.")]
    assert len(extension) == 1, elves
    vendored = {p.name for p in elves if p.parent.name == "cairn_flow.libs"}
    assert {name.split("-")[0] for name in vendored} == VENDORED, vendored
    for elf in elves:
        outside = needed_libraries(elf) - SYSTEM_LIBRARIES - vendored
        assert not outside, f"{elf.name} needs {outside}"


@pytest.mark.wheel
def test_readme_wheel_install_then_examples_and_client(wheel: Path, tmp_path: Path) -> None:
    """The README's Install block, as written, in a folder holding only dist/."""
    (tmp_path / "dist").mkdir()
    shutil.copy(wheel, tmp_path / "dist")
    (install,) = [b for b in readme_blocks("Install") if "--find-links dist" in b]
    out = bash(install, tmp_path, clean_env())
    assert "runs" in out and "version" in out  # `cairn --help` lists the tools
    venv = tmp_path / ".venv" / "bin"
    python = str(venv / "python")
    env = clean_env(CAIRN_HOME=str(tmp_path / ".cairn"))
    where = bash(f"{python} -c 'import cairn._core; print(cairn._core.__file__)'", tmp_path, env)
    assert where.startswith(str(tmp_path / ".venv")), where
    # The loader takes the libraries the wheel carries, not this machine's.
    loaded = {line.split("-")[0].strip().split(".so")[0]: line
              for line in bash(f"ldd {where.strip()}", tmp_path, env).splitlines()}
    for name in VENDORED:
        assert f"{tmp_path}/.venv/" in loaded[name], loaded[name]
        assert "cairn_flow.libs" in loaded[name], loaded[name]
    # The examples' extras come from the package index, as the README says.
    bash(f'{venv}/pip install -q --find-links dist "cairn-flow[examples]"', tmp_path, env)
    for example in ("hello", "branch", "foreach", "switch", "sklearn_sweep"):
        shutil.copy(EXAMPLES / f"{example}.py", tmp_path)
        bash(f"{python} {example}.py run", tmp_path, env)
    client = """from cairn import Flow; print(Flow("HelloFlow").latest_run["end"].task.data.loud)"""
    loud = bash(f"{python} -c '{client}'", tmp_path, env)
    assert loud.strip() == "HELLO"
    runs = [line.split("\t") for line in bash(f"{venv}/cairn runs", tmp_path, env).splitlines()]
    assert sorted((path.split("/")[0], status) for path, status, *_ in runs) == [
        (flow, "succeeded") for flow in
        ("BranchFlow", "ForeachFlow", "HelloFlow", "SklearnSweepFlow", "SwitchFlow")]


def test_configure_names_each_missing_package_on_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(["cmake", "-S", str(REPO), "-B", str(tmp_path / "build"), "-G", "Ninja",
                           "-DCAIRN_BUILD_PYTHON=OFF", "-DCMAKE_DISABLE_FIND_PACKAGE_fmt=TRUE",
                           "-DCMAKE_DISABLE_FIND_PACKAGE_GTest=TRUE"],
                          env=clean_env(), capture_output=True, text=True, check=False, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "cairn: missing {fmt} (Debian/Ubuntu package: libfmt-dev)" in out
    assert "cairn: missing GoogleTest (Debian/Ubuntu package: libgtest-dev libgmock-dev)" in out
    assert "sudo apt-get install libfmt-dev libgtest-dev libgmock-dev" in out
    assert "Call Stack" not in out


def test_configure_without_a_compiler_says_which_package(tmp_path: Path) -> None:
    env = clean_env()
    env.pop("CXX", None)
    # CMake looks in none of PATH's folders: no compiler anywhere.
    hidden = ";".join(d for d in env["PATH"].split(os.pathsep) if d)
    # The build tool is named outright: a hidden PATH would hide ninja too, and
    # CMake would fail on that before it looks for a compiler.
    make = shutil.which("make") or "/usr/bin/make"
    proc = subprocess.run(["cmake", "-S", str(REPO), "-B", str(tmp_path / "build"), "-G", "Unix Makefiles",
                           f"-DCMAKE_MAKE_PROGRAM={make}", f"-DCMAKE_IGNORE_PATH={hidden}"],
                          env=env, capture_output=True, text=True, check=False, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    line = ("cairn: missing a C++20 compiler (g++ 10 or newer) "
            "(Debian/Ubuntu package: build-essential)")
    assert line in out
    assert "sudo apt-get install build-essential" in out


@pytest.mark.wheel
@pytest.mark.slow
def test_readme_checkout_install_as_written(tmp_path: Path) -> None:
    """The README's from-a-checkout block, in a fresh venv, from a copy of the
    checkout (its own build folder: pip's isolated build finds fresh tools)."""
    checkout = tmp_path / "cairn"
    shutil.copytree(REPO, checkout, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", ".cairn", ".venv", "__pycache__", "*.egg-info", ".pytest_cache"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    (block,) = [b for b in readme_blocks("Install") if "--find-links" not in b]
    env = clean_env(VIRTUAL_ENV=str(venv))
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    bash(block, checkout, env, timeout=1800)
    shutil.copy(EXAMPLES / "hello.py", tmp_path)
    run_env = clean_env(CAIRN_HOME=str(tmp_path / ".cairn"))
    out = bash(f"{venv}/bin/python hello.py run && {venv}/bin/python -c 'import sklearn, cairn'",
               tmp_path, run_env)
    assert "succeeded" in out
