"""The code package: the flow file's folder (its Python files and the files
with suffixes the user adds, as Metaflow's code package does) as one
deterministic tar, stored as a content-addressed blob. Equal code gives an
equal digest, so it is uploaded once; a node needs only cairn installed."""

from __future__ import annotations

import io
import os
import tarfile

from ..errors import CairnException

DEFAULT_SUFFIXES = (".py",)
SKIP_DIRS = {".cairn", "__pycache__", ".git", ".hg", ".venv", "venv", "node_modules", ".ipynb_checkpoints"}
MAX_BYTES = 256 * 1024 * 1024


def suffixes_from_env() -> tuple[str, ...]:
    """.py, plus CAIRN_PACKAGE_SUFFIXES (or METAFLOW_DEFAULT_PACKAGE_SUFFIXES): ".txt,.json"."""
    extra = (os.environ.get("CAIRN_PACKAGE_SUFFIXES")
             or os.environ.get("METAFLOW_DEFAULT_PACKAGE_SUFFIXES", ""))
    return DEFAULT_SUFFIXES + tuple(s.strip() for s in extra.split(",") if s.strip())


def package_files(flow_file: str, suffixes: tuple[str, ...]) -> list[tuple[str, str]]:
    """(path inside the package, path on disk), sorted; the flow's folder, recursively."""
    top = os.path.dirname(os.path.abspath(flow_file))
    out = []
    for here, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in files:
            if name.endswith(suffixes):
                path = os.path.join(here, name)
                out.append((os.path.relpath(path, top), path))
    return sorted(out)


def build(flow_file: str, suffixes: tuple[str, ...] | None = None) -> bytes:
    """The package's bytes: the same files with the same content give the same bytes."""
    buf = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for arcname, path in package_files(flow_file, suffixes or suffixes_from_env()):
            with open(path, "rb") as f:
                data = f.read()
            total += len(data)
            if total > MAX_BYTES:
                raise CairnException(
                    f"the code package of {flow_file} passes {MAX_BYTES >> 20} MB at {arcname}; "
                    f"keep data out of the flow's folder")
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(data))  # mtime, owner: zero, so bytes depend on content only
    return buf.getvalue()


def extract(data: bytes, dest: str) -> None:
    """Unpacks into `dest` atomically: a folder appears complete or not at all."""
    if os.path.isdir(dest):
        return
    tmp = f"{dest}.tmp-{os.getpid()}"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            if member.name.startswith(("/", "..")) or "/../" in member.name:
                raise CairnException(f"code package member escapes its folder: {member.name}")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(tmp, filter="data")
        else:
            tar.extractall(tmp)  # noqa: S202 - members checked above
    try:
        os.rename(tmp, dest)
    except OSError:
        if not os.path.isdir(dest):
            raise
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
