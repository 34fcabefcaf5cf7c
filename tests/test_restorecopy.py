"""A restore copies large files in the kernel and still proves every byte it put in place.

Files of ``KERNEL_COPY`` bytes and more are copied with ``copy_file_range`` and hashed by
reading the *new* file back: what is compared with the manifest is what the new tree
holds. Where the kernel refuses (another file system, no such call), the file is copied
through a buffer and checked the same way. A damaged large object, or a copy that went
wrong, is refused before anything live changes; a fault in the middle of a kernel copy
ends as before.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from conftest import tree_fingerprint
from faults import leftovers, raised_with
from strongroom.errors import CorruptBackup, RestoreFailed
from strongroom.restore import restorecopy
from strongroom.scopes import Scope

MB = 1 << 20
BIG = 2 * restorecopy.PIECE + 12345  # three pieces, the last one short


def make_live(config, files: dict[str, bytes]) -> Path:
    live = config.working_dir
    for rel, content in files.items():
        (live / rel).parent.mkdir(parents=True, exist_ok=True)
        (live / rel).write_bytes(content)
    return live


def stored_object(config, backup_id: str, rel: str) -> Path:
    return config.backups_dir / "site" / backup_id / "files" / rel


def flip_a_bit(path: Path, offset: int) -> None:
    """Damage a stored file in place, keeping its size and its read-only mode: only its
    content can tell."""
    mode = path.stat().st_mode
    path.chmod(0o600)
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 1]))
    path.chmod(mode)


def copy_between(tmp_path: Path, src: Path) -> tuple[str, int, bytes]:
    """``restorecopy`` on one file: (digest, size, the new file's bytes)."""
    dest_dir = tmp_path / "dest"
    dest_dir.mkdir()
    folder = os.open(src.parent, os.O_RDONLY | os.O_DIRECTORY)
    into = os.open(dest_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        source = restorecopy.open_source(folder, src.name, src.stat().st_size)
        try:
            digest, size, fd = restorecopy.copy_file(source, into, src.name, src.name)
            os.close(fd)
        finally:
            os.close(source)
    finally:
        os.close(folder)
        os.close(into)
    return digest, size, (dest_dir / src.name).read_bytes()


def test_large_files_are_restored_exactly_with_their_mode_and_time(config, service):
    files = {"media/big.bin": os.urandom(BIG), "media/exact.bin": os.urandom(restorecopy.KERNEL_COPY),
             "small.txt": b"small"}
    live = make_live(config, files)
    (live / "media/big.bin").chmod(0o640)
    os.utime(live / "media/exact.bin", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    backup = service.make_backup()["id"]
    at_backup = tree_fingerprint(live)
    for rel in files:  # every file changed since: all are copied back from the backup
        (live / rel).write_bytes(b"changed")

    result = service.restore_backup(backup)

    assert result["copied"] == len(files)
    assert tree_fingerprint(live) == at_backup


def test_a_damaged_large_object_is_refused_before_anything_live_changes(config, service):
    live = make_live(config, {"media/big.bin": os.urandom(BIG)})
    backup = service.make_backup()["id"]
    (live / "media/big.bin").write_bytes(b"changed since")  # so the restore must copy it back
    flip_a_bit(stored_object(config, backup, "media/big.bin"), BIG - 5)  # in its last piece
    before = tree_fingerprint(live)

    with pytest.raises(CorruptBackup, match="before anything live changed") as raised:
        service.restore_backup(backup)

    assert "media/big.bin" in str(raised.value)
    assert tree_fingerprint(live) == before
    assert leftovers(config, Scope.site()) == []


def test_what_is_checked_is_the_new_file_not_what_was_read(config, service, monkeypatch):
    """A kernel copy that writes something else than the object holds (simulated: one
    byte of each copied piece turned) is caught, because the digest is taken from the
    copy."""
    content = os.urandom(BIG)
    live = make_live(config, {"media/big.bin": content})
    backup = service.make_backup()["id"]
    (live / "media/big.bin").write_bytes(b"changed since")
    before = tree_fingerprint(live)
    real = os.copy_file_range

    def copying_wrong(src, dst, count, *args):
        copied = real(src, dst, count, *args)
        if copied:
            end = os.lseek(dst, 0, os.SEEK_CUR)
            os.pwrite(dst, bytes([content[end - 1] ^ 1]), end - 1)
        return copied

    monkeypatch.setattr(os, "copy_file_range", copying_wrong)
    with pytest.raises(CorruptBackup, match="does not match its hash"):
        service.restore_backup(backup)

    assert tree_fingerprint(live) == before


def test_across_file_systems_a_large_file_is_copied_by_hand_and_checked(tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system at /dev/shm")
    content = os.urandom(restorecopy.KERNEL_COPY + 1)
    src = shm / f"strongroom-test-{os.getpid()}.bin"
    src.write_bytes(content)
    try:
        probe = tmp_path / "probe"
        with open(src, "rb") as fin, open(probe, "wb") as fout, pytest.raises(OSError) as refused:
            os.copy_file_range(fin.fileno(), fout.fileno(), 1)
        assert refused.value.errno == errno.EXDEV  # the kernel does refuse: the other way is taken

        assert copy_between(tmp_path, src) == (hashlib.sha256(content).hexdigest(), len(content), content)
    finally:
        src.unlink()


@pytest.mark.parametrize("refusal", [errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP])
def test_a_kernel_that_refuses_the_copy_gets_a_copy_by_hand(tmp_path, monkeypatch, refusal):
    content = os.urandom(BIG)
    src = tmp_path / "big.bin"
    src.write_bytes(content)
    calls = []

    def refusing(*args):
        calls.append(args)
        raise OSError(refusal, os.strerror(refusal))

    monkeypatch.setattr(os, "copy_file_range", refusing)
    assert copy_between(tmp_path, src) == (hashlib.sha256(content).hexdigest(), len(content), content)
    assert len(calls) == 1


def test_an_error_in_the_middle_of_a_kernel_copy_is_not_hidden_by_a_copy_by_hand(tmp_path, monkeypatch):
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(BIG))
    real, calls = os.copy_file_range, []

    def failing_later(*args):
        calls.append(args)
        if len(calls) == 2:
            raise OSError(errno.EIO, "Input/output error")
        return real(*args)

    monkeypatch.setattr(os, "copy_file_range", failing_later)
    with pytest.raises(OSError) as raised:
        copy_between(tmp_path, src)
    assert raised.value.errno == errno.EIO


def test_a_full_disk_at_any_piece_of_a_kernel_copy_ends_as_before(config, service):
    live = make_live(config, {"media/big.bin": os.urandom(BIG), "media/other.bin": os.urandom(2 * MB)})
    backup = service.make_backup()["id"]
    for rel in ("media/big.bin", "media/other.bin"):
        (live / rel).write_bytes(b"changed since")
    before = tree_fingerprint(live)
    pieces = -(-BIG // restorecopy.PIECE)

    for piece in range(1, pieces + 1):
        raised = _full_disk_at_piece(piece, lambda: service.restore_backup(backup))
        assert isinstance(raised, RestoreFailed), (piece, raised)
        assert "before anything live changed" in str(raised), raised
        assert tree_fingerprint(live) == before, piece
        assert leftovers(config, Scope.site()) == [], piece


def _full_disk_at_piece(piece: int, operation) -> BaseException | None:
    """Run ``operation``, the disk full at the write point before piece ``piece`` of the
    copy of ``media/big.bin``; return what it raised."""
    seen = 0

    def hook(kind, detail):
        nonlocal seen
        if kind == "write" and detail == "media/big.bin":
            seen += 1
            if seen == piece:
                raise OSError(errno.ENOSPC, "No space left on device")

    return raised_with(hook, operation)
