"""Removing a restore's old tree after the restore has returned, without losing crash-safety.

Once a restore's journal says ``cleanup``, the new tree is durable and in place, and
the old tree (``.<name>.old-<id>`` beside the live folder) is only garbage. Removing it
is one ``unlink`` per file, as long as the restore's own work on an unchanged folder,
so the restore hands it to a sweep instead (``hand_over``):

1. The old tree is renamed to a name of its own, ``.<mode>.sweep-<random>``, in the
   folder that holds the site's live folder (``place``). That folder is outside every
   scope's folder (the site's is ``working/<mode>``, a project's below it), so no walk,
   backup, restore or rescue of any scope ever sees a tree being swept, and the name is
   never one a later restore uses (``recovering.tree_paths``): a later restore of the
   same backup is never blocked by it.
2. The tree's folder is opened and locked (``flock``), and a detached process
   (``python -m strongroom.fs.sweeping``, its own session, no standard streams, lower
   priority) is started with that descriptor: it holds the lock while it removes the
   tree, through folder descriptors (``mutations.rmtree``), never following a link.
   It holds no operation lock and blocks nothing. (In a server that embeds Python, whose
   executable is no Python to start, a daemon thread does the same.)
3. If the sweep dies (a crash, a kill, a power cut), its lock goes with it, and the
   next operation of that run mode removes the rest (``recovering.remove_leftover_trees``
   removes every sweep tree whose lock it can take, skipping one a live sweep holds).

Where the rename cannot be made (the scope's folder on another file system than the
site's, or a full disk), a process cannot be started, or a mutation hook is installed (the fault
tests: every change stays in the calling thread, in order, ``mutations.hooked``), the
tree is removed at once, as before. So the disk space of the old tree is freed a moment
after the restore returns, never later than the next operation.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path

from strongroom.fs import mutations

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NICENESS = 10  # the sweep yields the CPU to whatever runs next


def place_of(site_dir: Path) -> tuple[Path, str]:
    """The folder that holds trees being swept, and their names' prefix, for the run mode
    whose site folder (``working/<mode>``) is ``site_dir``."""
    return site_dir.parent, f".{site_dir.name}.sweep-"


def hand_over(parent_fd: int, name: str, place_fd: int, prefix: str) -> str | None:
    """Move the tree ``name`` of ``parent_fd`` out of the way and have it removed.

    Returns the tree's new name in ``place_fd`` while a detached sweep removes it, or
    None when it was removed here (see the module's docstring for when).
    """
    swept = prefix + secrets.token_hex(8)
    try:
        mutations.rename(name, swept, src_dir_fd=parent_fd, dst_dir_fd=place_fd)
    except OSError:  # another file system (EXDEV), or a full disk: removing frees space
        mutations.rmtree(name, dir_fd=parent_fd)
        return None
    if mutations.hooked() or not _start(place_fd, swept):
        mutations.rmtree(swept, dir_fd=place_fd)
        return None
    return swept


def _start(place_fd: int, name: str) -> bool:
    """Start the detached sweep of ``name``, holding its lock; False if it could not start."""
    try:
        tree_fd = os.open(name, DIR_FLAGS, dir_fd=place_fd)
    except OSError:
        return False
    try:
        fcntl.flock(tree_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if _python() is None:  # a server that embeds Python (its executable is not python)
            return _start_thread(place_fd, name, tree_fd)
        child = subprocess.Popen(
            [_python(), "-m", "strongroom.fs.sweeping", str(place_fd), name, str(tree_fd)],
            pass_fds=(place_fd, tree_fd), start_new_session=True, env=_environment(),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    except OSError:
        return False
    finally:
        os.close(tree_fd)  # the child's copy keeps the lock (flock belongs to the open file)
    # A long-lived caller (the web server) reaps it; a command line exits before it ends.
    threading.Thread(target=child.wait, name="strongroom-sweep-reaper", daemon=True).start()
    return True


def _python() -> str | None:
    """The Python interpreter to run the sweep with: this process's, if it is one."""
    executable = sys.executable
    return executable if executable and os.path.basename(executable).startswith("python") else None


def _start_thread(place_fd: int, name: str, tree_fd: int) -> bool:
    """The sweep in a daemon thread of this process, on its own copies of the descriptors
    (the lock stays held until the thread closes its copy; a process that exits first
    leaves the rest to the next operation)."""
    place_copy, tree_copy = os.dup(place_fd), os.dup(tree_fd)

    def run() -> None:
        try:
            sweep(place_copy, name, tree_copy)
        except Exception:  # noqa: BLE001, S110 - the next operation removes the rest
            pass
        finally:
            os.close(place_copy)
            os.close(tree_copy)

    threading.Thread(target=run, name="strongroom-sweep", daemon=True).start()
    return True


def _environment() -> dict[str, str]:
    """The caller's environment, with this package importable whatever its ``sys.path``."""
    here = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    return env


def take(dir_fd: int, name: str, wait: bool = False) -> int | None:
    """Open the tree ``name`` and take its sweep lock: its descriptor, or None if a live
    sweep holds it (``wait``: wait for that sweep to end) or it is not a folder."""
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def sweep(place_fd: int, name: str, tree_fd: int) -> None:
    """The detached process's work: remove ``name`` if it is still the locked tree."""
    held, there = os.fstat(tree_fd), os.lstat(name, dir_fd=place_fd)
    if (held.st_dev, held.st_ino) != (there.st_dev, there.st_ino):
        return  # not ours (removed and replaced meanwhile): leave it alone
    mutations.rmtree(name, dir_fd=place_fd)


def main(argv: list[str]) -> int:
    try:
        os.nice(NICENESS)
        place_fd, name, tree_fd = int(argv[0]), argv[1], int(argv[2])
        if not name.startswith(".") or "/" in name or ".sweep-" not in name:
            return 2
        sweep(place_fd, name, tree_fd)
    except Exception:  # noqa: BLE001 - nobody to tell: the next operation removes the rest
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
