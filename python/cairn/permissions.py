"""Who may read and write what a run creates under the datastore.

Files are created per the process umask, as by any Unix tool: with the usual
022, cairn.db is 0644 and blobs 0444 (readable by everyone on the machine).
CAIRN_UMASK sets the umask of the run (the engine, the worker and every task
process inherit it), e.g. 077 for files only you can read. CAIRN_UMASK=group
is the mode for a datastore a team shares: umask 002 (files group-writable)
and the setgid bit on the datastore folder, so that everything created under
it belongs to the folder's group, whoever runs the flow."""

from __future__ import annotations

import os
import stat

from .checks import ConfigurationError

GROUP = "group"
GROUP_UMASK = 0o002


def requested_umask() -> int | None:
    """The umask CAIRN_UMASK asks for (None: leave the process's own)."""
    text = os.environ.get("CAIRN_UMASK", "").strip()
    if not text:
        return None
    if text == GROUP:
        return GROUP_UMASK
    try:
        value = int(text, 8)
    except ValueError:
        value = -1
    if not 0 <= value <= 0o777:
        raise ConfigurationError(
            f"CAIRN_UMASK is '{text}'; expected an octal umask such as 022, 027 or 077, or '{GROUP}'")
    return value


def apply(root: str) -> None:
    """Applies CAIRN_UMASK to this process (and so to the engine and tasks it
    starts) before anything is written under `root`; in group mode, creates
    `root` if needed and sets its setgid bit."""
    mask = requested_umask()
    if mask is None:
        return
    os.umask(mask)
    os.makedirs(root, exist_ok=True)
    if os.environ.get("CAIRN_UMASK", "").strip() == GROUP:
        st = os.stat(root)
        if not st.st_mode & stat.S_ISGID and st.st_uid == os.geteuid():
            os.chmod(root, stat.S_IMODE(st.st_mode) | stat.S_ISGID | 0o070)
    # SQLite creates a database 0644 whatever the umask (and its -wal and -shm
    # files with the database's mode): an empty file made here first, which
    # SQLite takes as a new database, follows the umask like everything else.
    db = os.path.join(root, "cairn.db")
    try:
        os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except FileExistsError:
        pass
