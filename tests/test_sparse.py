"""Sparse files: copied with their holes, hashed as their full logical content."""

import hashlib
import os

from strongroom.repo.pool import copy_hashing

MB = 1 << 20


def make_sparse(path, size: int, data: dict[int, bytes]) -> bytes:
    """A file of ``size`` bytes that holds ``data`` at the given offsets and holes elsewhere."""
    with open(path, "wb") as fh:
        fh.truncate(size)
        for offset, chunk in data.items():
            fh.seek(offset)
            fh.write(chunk)
    content = bytearray(size)
    for offset, chunk in data.items():
        content[offset:offset + len(chunk)] = chunk
    return bytes(content)


def allocated(path) -> int:
    return os.stat(path).st_blocks * 512


def test_a_sparse_copy_keeps_the_holes_and_hashes_the_full_content(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    content = make_sparse(src, 64 * MB, {MB: b"a" * 4096, 40 * MB: b"b" * 10_000})
    assert allocated(src) < MB  # the file system made it sparse

    digest, size = copy_hashing(src, dst, sparse=True)

    assert (digest, size) == (hashlib.sha256(content).hexdigest(), 64 * MB)
    assert dst.read_bytes() == content
    assert allocated(dst) < MB  # the copy is sparse too


def test_a_sparse_copy_of_a_file_ending_in_data_or_all_hole_is_exact(tmp_path):
    for name, size, data in (("tail", 8 * MB, {8 * MB - 5: b"12345"}), ("empty", 3 * MB, {}),
                             ("nothing", 0, {}), ("dense", 100_000, {0: os.urandom(100_000)})):
        src, dst = tmp_path / name, tmp_path / f"{name}.copy"
        content = make_sparse(src, size, data)
        assert copy_hashing(src, dst, sparse=True) == (hashlib.sha256(content).hexdigest(), size)
        assert dst.read_bytes() == content


def test_a_dense_copy_still_writes_every_block(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    content = make_sparse(src, 16 * MB, {0: b"x"})
    assert copy_hashing(src, dst) == (hashlib.sha256(content).hexdigest(), 16 * MB)
    assert allocated(dst) >= 16 * MB


def test_an_object_at_its_link_limit_is_copied_with_its_holes(tmp_path, monkeypatch):
    import errno

    from strongroom.fs import mutations
    from strongroom.repo.pool import Pool

    pool = Pool(tmp_path / "pool")
    src = tmp_path / "src"
    content = make_sparse(src, 32 * MB, {5 * MB: b"z" * 1000})
    (tmp_path / "out").mkdir()
    digest, _, _ = pool.store(src, tmp_path / "out" / "first", sparse=True)
    real_link = mutations.link

    def link(source, dest):
        if str(source) == pool.object_name(digest):
            raise OSError(errno.EMLINK, "Too many links")
        real_link(source, dest)

    monkeypatch.setattr(mutations, "link", link)
    pool.link(digest, tmp_path / "out" / "second")
    second = tmp_path / "out" / "second"
    assert second.read_bytes() == content and allocated(second) < MB
    assert second.stat().st_ino != pool.object_path(digest).stat().st_ino
