"""Writing a demo site's plan: its files under the working dir (random bytes made on the
fly, incompressible and unique), its folders' mtimes, then its records."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from pathlib import Path

from strongroom.config import Config
from strongroom.demo.plan import DemoPlan
from strongroom.demo.seeded import mtime_ns

Progress = Callable[[str, int, "int | None"], None]

CHUNK = 1 << 20


def write_demo_site(
    config: Config, database, plan: DemoPlan, *, progress: Progress | None = None
) -> None:
    """Write ``plan``'s files under the working dir, then insert its records."""
    report = progress or (lambda step, done, total: None)
    root, total, done = config.working_dir, plan.site.total_bytes, 0
    block = random.Random(f"{plan.seed}:block").randbytes(CHUNK)
    report("files", 0, total)
    for planned in plan.files:
        pieces = [planned.content]
        if planned.noise is not None:
            pieces = chain(
                pieces, _noise(planned.noise, planned.size - len(planned.content), block)
            )
        _write_file(root.joinpath(*planned.path.parts), pieces, planned.mtime_ns)
        done += planned.size
        report("files", done, total)
    _set_directory_mtimes(root, mtime_ns(len(plan.files)))
    for n, (name, documents) in enumerate(plan.records.items()):
        report("records", n, len(plan.records))
        database[name].insert_many([dict(doc) for doc in documents])
    report("records", len(plan.records), len(plan.records))


def _write_file(path: Path, pieces: Iterable[bytes | memoryview], mtime_ns: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as out:
        out.writelines(pieces)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def _noise(key: str, size: int, block: bytes | None) -> Iterator[bytes | memoryview]:
    """``size`` incompressible bytes determined by ``key``, in pieces of at most ``CHUNK``."""
    rng = random.Random(key)
    if size <= CHUNK:
        yield rng.randbytes(size)
        return
    permutation = rng.sample(range(256), 256)
    while size > 0:
        shift, mask = rng.randrange(256), rng.randrange(256)
        table = bytes(permutation[(x + shift) & 255] ^ mask for x in range(256))
        view = memoryview(block.translate(table))
        offset, n = rng.randrange(CHUNK), min(CHUNK, size)
        head = view[offset : offset + n]
        yield head
        if len(head) < n:
            yield view[: n - len(head)]
        size -= n


def _set_directory_mtimes(root: Path, mtime_ns: int) -> None:
    for folder, _, _ in sorted(os.walk(root), key=lambda entry: -len(Path(entry[0]).parts)):
        os.utime(folder, ns=(mtime_ns, mtime_ns))
