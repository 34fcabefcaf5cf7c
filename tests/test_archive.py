"""Portable archives: a backup exported here is taken in there, whole or not at all.

Round trips go through real data dirs (another data dir is another site, with another
key), real databases on both engines, and real processes joined by a pipe. The
malicious archives are written with ``tarfile`` by hand; each must be refused as a
whole, with nothing written outside the import's staging folder, and that folder gone.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import zstandard
from bson import ObjectId

from conftest import records_fingerprint, tree_fingerprint
from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.errors import BadArchive, BadInput
from strongroom.exchange.archive_format import Limits
from strongroom.scopes import Scope, project_queries, scope_dir
from strongroom.service import Strongroom

SUMS = "SHA256SUMS"


# -- helpers ----------------------------------------------------------------------------


def exported(service, backup_id, project=None, compress="none") -> bytes:
    out = io.BytesIO()
    service.export_backup(backup_id, out, project, compress=compress)
    return out.getvalue()


def members_of(data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        return [(m, tar.extractfile(m).read() if m.isreg() else b"") for m in tar.getmembers()]


def regular(name: str, data: bytes, mode: int = 0o600) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.devmajor, info.devminor = 1, 3
    return info, b""


def tar_of(members, resum: bool = True) -> bytes:
    """A tar of ``members``; with ``resum`` its SHA256SUMS made to match the rest, as a
    forger who knows the format would."""
    members = [m for m in members if m[0].name != SUMS] if resum else members
    if resum:
        lines = "".join(f"{hashlib.sha256(data).hexdigest()}  {info.name}\n" for info, data in members)
        members = [*members, regular(SUMS, lines.encode())]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def object_name(data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f"objects/{digest[:2]}/{digest}"


def replaced(members, name: str, change) -> list:
    """The members with ``name``'s content changed (the others' headers copied, untouched)."""
    return [(copy.copy(info), change(data) if info.name == name else data) for info, data in members]


def with_size(members):
    for info, data in members:
        info.size = len(data) if info.isreg() else 0
    return members


def everything_below(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")} if root.exists() else set()


def second_site(tmp_path, config: Config, request) -> Config:
    """Another site on the same engine: another data dir, database and site key."""
    uri = request.getfixturevalue("server_databases").new_uri() if config.db_uri else None
    return Config(data_dir=tmp_path / "other", mode="pilot", db_uri=uri)


def lived_in(config: Config) -> Strongroom:
    """A service on a site that has records already: a project and an edition of its own.
    (On an embedded database without a ``project`` collection a project restore fails:
    montydb cannot delete from a collection it never wrote; an issue of the restore.)"""
    database = open_database(config)
    resident = ObjectId()
    database["project"].insert_one({"_id": resident, "title": "lives here"})
    database["edition"].insert_one({"_id": ObjectId(), "projectId": resident})
    return Strongroom(config, database=database)


# -- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("compress", ["none", "gzip", "zstd"])
def test_a_site_archive_lands_on_another_site_and_restores_the_files_and_records_it_was_made_from(
        engine_service, engine_config, engine_database, engine_site, tmp_path, request, compress):
    records, files = records_fingerprint(engine_database), tree_fingerprint(engine_config.working_dir)
    backup_id = engine_service.make_backup(note="to move")["id"]
    archive = exported(engine_service, backup_id, compress=compress)

    other = second_site(tmp_path, engine_config, request)
    there = Strongroom(other, database=open_database(other))
    made = there.import_archive(io.BytesIO(archive))

    assert made["reason"] == "import" and made["scope"] == "site"
    assert made["imported_from"]["name"] == backup_id and made["imported_from"]["format"] == "archive"
    assert made["records"] == {name: len(docs) for name, docs in records.items()}
    assert [b["id"] for b in there.list_backups()] == [made["id"]]
    assert there.verify_backup(made["id"])["ok"]
    assert not list((other.backups_dir / "site").glob(".staging-*"))
    there.restore_backup(made["id"])
    assert records_fingerprint(there.database) == records
    assert tree_fingerprint(other.working_dir) == files


def test_compression_is_told_by_content_and_every_form_holds_the_same_tar(service, site):
    backup_id = service.make_backup()["id"]
    plain = exported(service, backup_id)
    assert gzip.decompress(exported(service, backup_id, compress="gzip")) == plain
    assert zstandard.ZstdDecompressor().decompressobj().decompress(
        exported(service, backup_id, compress="zstd")) == plain
    names = [info.name for info, _ in members_of(plain)]
    assert names[:3] == ["archive.json", "backup/manifest.json", "backup/files.jsonl"]
    assert names[-1] == SUMS and all(info.isreg() for info, _ in members_of(plain))


def test_an_archive_extracted_with_tar_checks_with_sha256sum(service, site, tmp_path):
    archive = tmp_path / "site.tar"
    archive.write_bytes(exported(service, service.make_backup()["id"]))
    out = tmp_path / "unpacked"
    out.mkdir()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(out)], check=True)
    checked = subprocess.run(["sha256sum", "-c", "--quiet", SUMS], cwd=out, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_project_archive_lands_as_that_project_and_restores_only_it(
        engine_service, engine_config, engine_database, engine_site, tmp_path, request):
    project = engine_site.project_ids[0]
    queries = project_queries(engine_config, project)
    records = records_fingerprint(engine_database, queries)
    files = tree_fingerprint(scope_dir(engine_config, Scope.project(project)))
    backup_id = engine_service.make_backup(project)["id"]
    archive = exported(engine_service, backup_id, project, compress="zstd")

    other = second_site(tmp_path, engine_config, request)
    there = lived_in(other)
    with pytest.raises(BadArchive, match="without --project"):
        there.import_archive(io.BytesIO(exported(engine_service, engine_service.make_backup()["id"])), project)
    with pytest.raises(BadArchive, match=f"--as-project {'f' * 24}"):
        there.import_archive(io.BytesIO(archive), "f" * 24)
    made = there.import_archive(io.BytesIO(archive), project)

    assert (made["scope"], made["project"], made["reason"]) == ("project", project, "import")
    assert there.list_backups() == []
    assert there.verify_backup(made["id"], project)["ok"]
    there.restore_backup(made["id"], project)
    assert records_fingerprint(there.database, queries) == records
    assert tree_fingerprint(scope_dir(other, Scope.project(project))) == files


def test_as_project_lands_a_projects_archive_under_another_id_with_its_links_rewritten(
        service, config, database, site, tmp_path):
    project, new = site.project_ids[1], str(ObjectId())
    records = records_fingerprint(database, project_queries(config, project))
    files = tree_fingerprint(scope_dir(config, Scope.project(project)))
    archive = exported(service, service.make_backup(project)["id"], project)

    other = Config(data_dir=tmp_path / "other", mode="test")
    there = lived_in(other)
    made = there.import_archive(io.BytesIO(archive), as_project=new)
    assert (made["project"], made["imported_from"]["project"]) == (new, project)
    there.restore_backup(made["id"], new)

    moved = records_fingerprint(there.database, project_queries(other, new))
    assert [d["_id"] for d in moved["project"]] == [ObjectId(new)]
    assert {d["projectId"] for d in moved["edition"]} == {ObjectId(new)}
    assert [d["_id"] for d in moved["edition"]] == [d["_id"] for d in records["edition"]]
    assert [{**d, "_id": 0} for d in moved["project"]] == [{**d, "_id": 0} for d in records["project"]]
    assert tree_fingerprint(scope_dir(other, Scope.project(new))) == files


def test_an_archive_of_this_site_lands_as_a_new_backup_after_the_newest(service, site):
    first = service.make_backup()["id"]
    second = service.make_backup()["id"]
    made = service.import_archive(io.BytesIO(exported(service, first)))
    assert [b["id"] for b in service.list_backups()] == [made["id"], second, first]
    assert service.show_backup(made["id"])["manifest"]["sequence"] == 3


def test_export_then_import_through_a_pipe_between_real_processes(config, site, service, tmp_path):
    backup_id = service.make_backup()["id"]
    other = tmp_path / "other"
    other.mkdir()  # a new server's data dir: made by its operator (a mistyped one is refused)
    command = [sys.executable, "-m", "strongroom.cli", "--mode", "pilot"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    exporter = subprocess.Popen([*command, "--data-dir", str(config.data_dir), "export", backup_id, "-o", "-",
                                 "--compress", "gzip"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    importer = subprocess.run([*command, "--data-dir", str(other), "import", "-", "--json"],
                              stdin=exporter.stdout, capture_output=True, text=True, env=env, timeout=120, check=False)
    exporter.stdout.close()
    exported_note = exporter.stderr.read().decode()
    assert exporter.wait(timeout=60) == 0, exported_note
    assert importer.returncode == 0, importer.stderr
    made = json.loads(importer.stdout)
    assert made["reason"] == "import"
    assert made["imported_from"]["fingerprint"] in exported_note  # compare them out of band
    there = Strongroom(Config(data_dir=other), database=open_database(Config(data_dir=other)))
    assert there.verify_backup(made["id"])["ok"]


def test_the_cli_exports_to_a_file_and_imports_it_whatever_its_name(cli, service, site, tmp_path):
    backup_id = service.make_backup()["id"]
    archive = tmp_path / "not-an-archive-by-its-name.txt"
    written = cli("export", backup_id, "-o", str(archive), "--compress", "zstd")
    assert written.exit_code == 0, written.output
    assert not list(tmp_path.glob(".*partial*"))
    imported = cli("import", str(archive))
    assert imported.exit_code == 0, imported.output
    assert service.list_backups()[0]["reason"] == "import"
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"no archive at all" * 100)
    refused = cli("import", str(junk))
    assert refused.exit_code == 2 and "neither a folder nor a Strongroom archive" in refused.output
    assert cli("import", str(archive), "--as-project", "a" * 24).exit_code == 2


# -- malicious archives -----------------------------------------------------------------


@pytest.fixture
def genuine(service, site):
    """The members of an archive of this site's backup, and of one of its projects'."""
    return members_of(exported(service, service.make_backup()["id"]))


def refused(service, config, tmp_path, data: bytes, match: str, limits: Limits | None = None,
            project: str | None = None) -> None:
    """Importing ``data`` fails with one line matching ``match``; nothing landed."""
    listed = {None: [b["id"] for b in service.list_backups()]}
    pool = everything_below(config.pool_dir)
    backups = config.backups_dir.relative_to(tmp_path).as_posix()
    outside = {p for p in everything_below(tmp_path) if not p.startswith(backups)}
    inside = everything_below(config.backups_dir)
    with pytest.raises(BadArchive, match=match) as caught:
        service.import_archive(io.BytesIO(data), project, limits=limits)
    assert "\n" not in str(caught.value)
    assert [b["id"] for b in service.list_backups()] == listed[None]
    assert everything_below(config.pool_dir) == pool
    assert not [p for p in config.backups_dir.rglob(".staging-*")]
    assert {p for p in everything_below(tmp_path) if not p.startswith(backups)} == outside
    assert everything_below(config.backups_dir) - inside <= {"site"}  # the staging folder's parent
    assert not (tmp_path / "x").exists() and not (config.data_dir / "x").exists()


@pytest.mark.parametrize("name", ["../../x", "a/../../x", "backup/../../../x", "/abs/x", "./archive.json"])
def test_a_member_whose_path_leaves_the_folder_is_refused(service, config, tmp_path, genuine, name):
    if name.startswith("/abs"):
        name = str(tmp_path / "x")
    archive = tar_of([genuine[0], regular(name, b"planted"), *genuine[1:]])
    refused(service, config, tmp_path, archive, "path|out of|not part")


def test_a_symlink_member_and_a_file_written_through_it_are_refused(service, config, tmp_path, genuine):
    (tmp_path / "outside").mkdir()
    archive = tar_of([genuine[0], special("objects/ab", tarfile.SYMTYPE, str(tmp_path / "outside")),
                      regular("objects/ab/x", b"through the link"), *genuine[1:]])
    refused(service, config, tmp_path, archive, "is a link")
    assert list((tmp_path / "outside").iterdir()) == []


def test_a_hard_link_to_etc_passwd_is_refused(service, config, tmp_path, genuine):
    archive = tar_of([genuine[0], special("backup/files.jsonl", tarfile.LNKTYPE, "/etc/passwd"), *genuine[2:]])
    refused(service, config, tmp_path, archive, "is a link")


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE], ids=["chr", "blk", "fifo"])
def test_a_device_node_or_fifo_is_refused(service, config, tmp_path, genuine, kind):
    archive = tar_of([genuine[0], special("objects/00/dev", kind), *genuine[1:]])
    refused(service, config, tmp_path, archive, "device or FIFO")


def test_a_setuid_member_is_refused(service, config, tmp_path, genuine):
    info, data = copy.copy(genuine[1][0]), genuine[1][1]
    info.mode = 0o4755
    refused(service, config, tmp_path, tar_of([genuine[0], (info, data), *genuine[2:]]), "setuid")


def test_a_duplicate_member_is_refused(service, config, tmp_path, genuine):
    objects = [m for m in genuine if m[0].name.startswith("objects/")]
    archive = tar_of([*genuine[:-1], objects[0]])
    refused(service, config, tmp_path, archive, "appears twice")


@pytest.mark.parametrize("compress", ["none", "gzip", "zstd"])
def test_a_bomb_stops_at_the_size_cap_whatever_its_compression(service, config, tmp_path, genuine, compress):
    zeros = bytes(8 << 20)
    planted = regular(object_name(zeros), zeros)
    archive = tar_of([*genuine[:-1], planted])
    if compress == "gzip":
        archive = gzip.compress(archive)
    elif compress == "zstd":
        archive = zstandard.ZstdCompressor().compress(archive)
    assert compress == "none" or len(archive) < 200_000  # a ratio bomb: small, expands 40-fold and more
    refused(service, config, tmp_path, archive, "bomb", limits=Limits(max_bytes=1 << 20))


def test_a_bomb_of_members_stops_at_the_count_cap(service, config, tmp_path, genuine):
    refused(service, config, tmp_path, tar_of(genuine), "bomb", limits=Limits(max_members=len(genuine) - 3))


def test_objects_the_file_list_does_not_name_are_refused_before_they_are_read(service, config, tmp_path, genuine):
    contents = [str(i).encode() for i in range(50)]  # each a genuine object, of no file of the list
    archive = tar_of([*genuine[:-1], *(regular(object_name(data), data) for data in contents)])
    refused(service, config, tmp_path, archive, "content its file list does not name")


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, read without holding them."""

    def __init__(self, size: int):
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def _bombed(members, name: str, size: int, compress: str) -> bytes:
    """The archive with member ``name`` made ``size`` zero bytes (its header says so), and
    compressed: a few hundred KB that expand to ``size``. Its SHA256SUMS is left as it was:
    the import must stop long before it."""
    out = io.BytesIO()
    writer = (gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1) if compress == "gzip" else
              zstandard.ZstdCompressor(level=1).stream_writer(out, closefd=False))
    with writer, tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if info.name == name:
                info = copy.copy(info)
                info.size = size
                tar.addfile(info, _Zeros(size))
            else:
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize("compress", ["zstd", "gzip"])
@pytest.mark.parametrize("bombed", ["object", "file list", "records as JSON"])
def test_a_member_larger_than_the_archive_declares_is_refused_before_it_is_written(
        service, config, tmp_path, genuine, monkeypatch, compress, bombed):
    from strongroom.fs import mutations

    name = {"object": next(i.name for i, _ in genuine if i.name.startswith("objects/")),
            "file list": "backup/files.jsonl", "records as JSON": "backup/db/json/edition.json"}[bombed]
    archive = _bombed(genuine, name, 1 << 30, compress)
    assert len(archive) < 8 << 20  # a small archive that would expand to a GB
    written = []
    write = mutations.write
    monkeypatch.setattr(mutations, "write", lambda fh, data: (written.append(len(data)), write(fh, data))[1])

    refused(service, config, tmp_path, archive, "but the archive's own")

    assert sum(written) < 4 << 20  # next to nothing was written before the refusal


@pytest.mark.parametrize("compress", ["zstd", "gzip"])
@pytest.mark.parametrize("bombed", ["file list", "records as BSON"])
def test_a_bomb_its_own_manifest_declares_is_refused_as_it_streams(
        service, config, tmp_path, genuine, monkeypatch, compress, bombed):
    """The manifest is nobody's signature here: an archive whose manifest says the file list
    has ten million entries, or a collection 256 MB of BSON, may not fill the disk with
    zeros under that cover. The list's lines and the dump's documents are checked as they
    stream, so the import stops within the first few KB."""
    from strongroom.fs import mutations

    size = 256 << 20
    name = {"file list": "backup/files.jsonl", "records as BSON": "backup/db/bson/edition.bson"}[bombed]

    def declare(content: bytes) -> bytes:
        manifest = json.loads(content)
        if bombed == "file list":
            manifest["files"]["entries"] = 10_000_000
        else:
            manifest["collections"]["edition"]["bytes"] = size
        return json.dumps(manifest).encode()

    archive = _bombed(with_size(replaced(genuine, "backup/manifest.json", declare)), name, size, compress)
    written = []
    write = mutations.write
    monkeypatch.setattr(mutations, "write", lambda fh, data: (written.append(len(data)), write(fh, data))[1])

    refused(service, config, tmp_path, archive, "refused as it was read")

    assert sum(written) < 4 << 20  # next to nothing was written before the refusal


def test_a_manifest_counting_more_records_than_its_bson_can_hold_is_refused(service, config, tmp_path, genuine):
    def declare(content: bytes) -> bytes:
        manifest = json.loads(content)
        manifest["collections"]["edition"]["count"] = 10_000_000  # would allow gigabytes of JSON
        return json.dumps(manifest).encode()

    refused(service, config, tmp_path, tar_of(with_size(replaced(genuine, "backup/manifest.json", declare))), "no BSON holds")


def test_the_caps_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("STRONGROOM_ARCHIVE_MAX_BYTES", "1234")
    monkeypatch.setenv("STRONGROOM_ARCHIVE_MAX_MEMBERS", "56")
    assert Limits.from_env() == Limits(max_bytes=1234, max_members=56)
    monkeypatch.setenv("STRONGROOM_ARCHIVE_MAX_MEMBERS", "lots")
    with pytest.raises(BadInput):
        Limits.from_env()


@pytest.mark.parametrize("compress", ["none", "gzip", "zstd"])
@pytest.mark.parametrize("cut", ["a third", "two thirds", "in its checksums"])
def test_a_truncated_archive_is_refused(service, config, tmp_path, genuine, compress, cut):
    archive = tar_of(genuine, resum=False)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        in_sums = tar.getmember(SUMS).offset_data + 10
    length = {"a third": len(archive) // 3, "two thirds": len(archive) * 2 // 3, "in its checksums": in_sums}[cut]
    archive = archive[:length]
    if compress == "gzip":
        archive = gzip.compress(archive)
    elif compress == "zstd":
        archive = zstandard.ZstdCompressor().compress(archive)
    refused(service, config, tmp_path, archive, "truncated|damaged|empty")


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_a_compressed_stream_cut_short_is_refused(service, config, tmp_path, genuine, compress):
    archive = tar_of(genuine, resum=False)
    packed = gzip.compress(archive) if compress == "gzip" else zstandard.ZstdCompressor().compress(archive)
    refused(service, config, tmp_path, packed[:-6], "truncated|damaged")


def test_an_archive_cut_at_a_member_boundary_lacks_its_checksums_and_is_refused(service, config, tmp_path, genuine):
    refused(service, config, tmp_path, tar_of(genuine[:-1], resum=False), f"truncated: it ends before its {SUMS}")


def test_a_tampered_manifest_is_refused_whether_or_not_the_checksums_were_made_again(
        service, config, tmp_path, genuine):
    def edit(data: bytes) -> bytes:
        manifest = json.loads(data)
        manifest["note"] = "forged"
        return json.dumps(manifest).encode()

    tampered = with_size(replaced(genuine, "backup/manifest.json", edit))
    refused(service, config, tmp_path, tar_of(tampered, resum=False), f"do not match its {SUMS}")
    refused(service, config, tmp_path, tar_of(tampered), "signature")


def test_a_changed_stored_content_or_file_list_is_refused(service, config, tmp_path, genuine):
    obj = next(info.name for info, _ in genuine if info.name.startswith("objects/"))
    changed = with_size(replaced(genuine, obj, lambda data: bytes([data[0] ^ 1]) + data[1:]))
    refused(service, config, tmp_path, tar_of(changed), "does not hash to its name")
    grown = with_size(replaced(genuine, obj, lambda data: data + b"!"))
    refused(service, config, tmp_path, tar_of(grown), "but the archive's own file list gives it")
    listed = with_size(replaced(genuine, "backup/files.jsonl", lambda data: data.replace(b'"mode":', b'"mode": ', 1)))
    refused(service, config, tmp_path, tar_of(listed), "file list does not match")
    missing = [m for m in genuine if m[0].name != obj]
    refused(service, config, tmp_path, tar_of(missing), "lacks the stored content")


def test_a_project_archive_relabelled_as_the_sites_is_refused(service, config, tmp_path, site):
    project = site.project_ids[0]
    members = members_of(exported(service, service.make_backup(project)["id"], project))

    def as_site(data: bytes) -> bytes:
        return json.dumps({**json.loads(data), "scope": "site", "project": None}).encode()

    label_only = with_size(replaced(members, "archive.json", as_site))
    refused(service, config, tmp_path, tar_of(label_only), "says it holds a backup of the site")
    both = with_size(replaced(label_only, "backup/manifest.json", as_site))
    refused(service, config, tmp_path, tar_of(both), "signature")


def test_a_site_archive_relabelled_as_a_projects_is_refused_by_its_records(service, config, tmp_path, site):
    project = site.project_ids[0]
    members = members_of(exported(service, service.make_backup()["id"]))
    keep = set(project_queries(config, project))

    def as_project(data: bytes) -> bytes:
        value = json.loads(data)
        value = {**value, "scope": "project", "project": project}
        if "collections" in value:
            value["collections"] = {k: v for k, v in value["collections"].items() if k in keep}
            value.pop("signature")  # as signed elsewhere: unknown key
            value["signature"] = {"algorithm": "hmac-sha256", "key_id": "0" * 16, "value": "0" * 64}
        return json.dumps(value).encode()

    relabelled = with_size(replaced(replaced(members, "archive.json", as_project), "backup/manifest.json", as_project))
    relabelled = [m for m in relabelled if not m[0].name.startswith("backup/db/") or
                  m[0].name.split("/")[-1].split(".")[0] in keep]
    refused(service, config, tmp_path, tar_of(relabelled), "record of another project", project=project)


def test_the_cli_refuses_a_malicious_archive_with_one_line(cli_process, config, service, site, tmp_path):
    genuine = members_of(exported(service, service.make_backup()["id"]))
    archive = tmp_path / "evil.tar"
    archive.write_bytes(tar_of([genuine[0], regular("../../x", b"planted"), *genuine[1:]]))
    result = cli_process("import", str(archive))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("strongroom: error: archive member")
    assert not (tmp_path / "x").exists()


def test_a_staging_folder_left_by_a_crash_is_removed_by_the_next_operation(service, config, site):
    service.make_backup()
    left = config.backups_dir / "site" / ".staging-archive-1-abc"
    (left / "objects").mkdir(parents=True)
    service.make_backup()
    assert not left.exists()


def test_export_refuses_a_damaged_backup(service, config, site):
    backup_id = service.make_backup()["id"]
    obj = next(p for p in config.pool_dir.rglob("*") if p.is_file() and p.stat().st_size > 0)
    obj.chmod(0o600)
    obj.write_bytes(b"damaged")
    with pytest.raises(Exception, match="damaged|unreadable"):
        exported(service, backup_id)



def test_as_project_refuses_to_land_a_copy_beside_the_original_whose_record_ids_it_shares(
        service, config, site, tmp_path):
    project = site.project_ids[0]
    archive = exported(service, service.make_backup(project)["id"], project)
    before = [b["id"] for b in service.list_backups(project)]
    with pytest.raises(BadArchive, match="belongs to another project on this site"):
        service.import_archive(io.BytesIO(archive), as_project=str(ObjectId()))
    assert [b["id"] for b in service.list_backups(project)] == before
    assert not list(config.backups_dir.rglob(".staging-*"))


def test_links_hard_links_empty_files_and_modes_survive_the_journey(service, config, database, site, tmp_path):
    working = config.working_dir
    (working / "notes").mkdir()
    (working / "notes" / "empty").write_bytes(b"")
    (working / "notes" / "same-a").write_text("identical content")
    (working / "notes" / "same-b").write_text("identical content")
    (working / "notes" / "first").write_text("two names, one inode")
    os.link(working / "notes" / "first", working / "notes" / "second")
    os.symlink("../about-nowhere", working / "notes" / "dangling")
    os.symlink("/etc/passwd", working / "notes" / "absolute")
    (working / "notes" / "private").write_text("mode 0600")
    (working / "notes" / "private").chmod(0o600)
    (working / "notes").chmod(0o750)
    files, records = tree_fingerprint(working), records_fingerprint(database)
    archive = exported(service, service.make_backup()["id"], compress="zstd")

    other = Config(data_dir=tmp_path / "other")
    there = Strongroom(other, database=open_database(other))
    made = there.import_archive(io.BytesIO(archive))
    there.restore_backup(made["id"])

    assert tree_fingerprint(other.working_dir) == files
    assert records_fingerprint(there.database) == records
    restored = other.working_dir / "notes"
    assert os.stat(restored / "first").st_ino == os.stat(restored / "second").st_ino
    assert os.readlink(restored / "absolute") == "/etc/passwd"


def test_a_huge_extended_header_is_refused_before_it_is_read_into_memory(service, config, tmp_path, genuine):
    info, data = copy.copy(genuine[1][0]), genuine[1][1]
    info.pax_headers = {"comment": "x" * (2 << 20)}
    refused(service, config, tmp_path, tar_of([genuine[0], (info, data), *genuine[2:]]), "extended header")


def test_import_from_an_empty_standard_input_fails_with_one_line(cli_process, config):
    config.data_dir.mkdir(parents=True)
    result = cli_process("import", "-")  # standard input is /dev/null
    assert result.returncode == 2
    assert result.stderr == "strongroom: error: the archive is empty\n"


def test_export_into_a_folder_that_does_not_exist_is_refused_in_one_line_naming_it(cli, service, site, tmp_path):
    backup_id = service.make_backup()["id"]
    result = cli("export", backup_id, "-o", str(tmp_path / "no-such-folder" / "site.tar"))
    assert result.exit_code == 2
    assert result.output == f"strongroom: error: cannot write {tmp_path}/no-such-folder/site.tar: " \
                            f"the folder {tmp_path}/no-such-folder does not exist\n"
