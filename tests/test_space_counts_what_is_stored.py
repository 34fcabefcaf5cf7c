"""Space checks count what is stored (issue 22, points 6 and 10), on a small tmpfs: a
sparse file counts by its allocated blocks, in the backup's and the restore's pre-flight
and in ``get``; and the pre-flight is never skipped because the previous backup was
small when the live data grew since."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.demo import create_demo_site

MB = 1 << 20
APPARENT = 512 * MB  # eight times the file system


def _site_on(mount) -> Config:
    config = Config(data_dir=mount / "data")
    create_demo_site(config, open_database(config), projects=1, editions=1, size="small", seed=2)
    return config


def _cli(config, *args):
    return subprocess.run([sys.executable, "-m", "strongroom.cli", "--data-dir", str(config.data_dir), *args],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, check=False)


def _allocated(path) -> int:
    return os.stat(path).st_blocks * 512


def _sha256(path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def test_a_sparse_file_far_larger_than_the_disk_is_backed_up_restored_and_fetched_with_its_holes(tmpfs):
    mount = tmpfs("64m")
    config = _site_on(mount)
    big = config.working_dir / "disk.img"
    with open(big, "wb") as fh:
        fh.truncate(APPARENT)
        fh.seek(APPARENT // 2)
        fh.write(b"data" * 1024)
    digest = _sha256(big)
    assert _allocated(big) < MB

    made = _cli(config, "backup")
    assert made.returncode == 0, made.stderr
    backup_id = made.stdout.strip()

    big.unlink()  # the restore must copy it back: counted by its blocks, not its length
    restored = _cli(config, "restore", backup_id, "--yes")
    assert restored.returncode == 0, restored.stderr
    assert _allocated(big) < MB and big.stat().st_size == APPARENT and _sha256(big) == digest

    fetched = mount / "fetched.img"
    got = _cli(config, "get", backup_id, "disk.img", "--to", str(fetched))
    assert got.returncode == 0, got.stderr
    assert _allocated(fetched) < MB and fetched.stat().st_size == APPARENT and _sha256(fetched) == digest


def test_get_keeps_every_hole_of_a_file_whose_data_is_scattered(tmpfs):
    """4 KB of data in every 64 KB: no run of zeros a reader could turn back into holes,
    so only the stored object's own holes (``SEEK_DATA``/``SEEK_HOLE``) keep the fetched
    file smaller than the file system (a dense copy needs 128 MB of a 64 MB tmpfs)."""
    mount = tmpfs("64m")
    config = _site_on(mount)
    scattered = config.working_dir / "scattered.img"
    apparent, step, piece = 128 * MB, 64 << 10, 4 << 10
    with open(scattered, "wb") as fh:
        fh.truncate(apparent)
        for offset in range(step // 2, apparent, step):
            fh.seek(offset)
            fh.write(os.urandom(piece))
    digest, allocated = _sha256(scattered), _allocated(scattered)
    assert allocated <= apparent // 8
    made = _cli(config, "backup")
    assert made.returncode == 0, made.stderr

    fetched = mount / "fetched.img"
    got = _cli(config, "get", made.stdout.strip(), "scattered.img", "--to", str(fetched))
    assert got.returncode == 0, got.stderr
    assert _allocated(fetched) <= allocated and fetched.stat().st_size == apparent and _sha256(fetched) == digest


def test_a_backup_after_the_live_data_grew_is_refused_before_it_writes_anything(tmpfs):
    mount = tmpfs("64m")
    config = _site_on(mount)
    assert _cli(config, "backup").returncode == 0  # small: the previous backup says nothing of what follows
    for n in range(4):
        (config.working_dir / f"grown-{n}.bin").write_bytes(os.urandom(10 * MB))
    objects = sorted(p.name for p in config.pool_dir.rglob("*"))
    free = os.statvfs(mount).f_bavail

    refused = _cli(config, "backup")

    assert refused.returncode == 6, refused.stderr
    assert "needs about" in refused.stderr and "nothing was changed" in refused.stderr
    assert sorted(p.name for p in config.pool_dir.rglob("*")) == objects
    assert os.statvfs(mount).f_bavail >= free  # the disk was never filled on the way
