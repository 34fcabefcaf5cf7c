"""Configuration: one frozen value, built from arguments or the environment. No globals."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from strongroom.errors import BadInput

RUN_MODES = ("pilot", "test", "prod")

ENV_DATA_DIR = "STRONGROOM_DATA_DIR"
ENV_MODE = "STRONGROOM_MODE"
ENV_DB = "STRONGROOM_DB"
ENV_MODEL = "STRONGROOM_MODEL"
ENV_SITE_KEY_FILE = "STRONGROOM_SITE_KEY_FILE"
ENV_BACKUP_GROUP = "STRONGROOM_BACKUP_GROUP"
ENV_S3_BUCKET = "STRONGROOM_S3_BUCKET"
ENV_S3_PREFIX = "STRONGROOM_S3_PREFIX"
ENV_S3_ENDPOINT = "STRONGROOM_S3_ENDPOINT"
ENV_S3_REGION = "STRONGROOM_S3_REGION"
ENV_REMOTE_KEY_FILE = "STRONGROOM_REMOTE_KEY_FILE"


class Link(NamedTuple):
    """A collection whose records belong to a project: those whose ``field`` holds the id
    of the project (``via`` the project collection) or of one of the project's records of
    another collection (``via`` that collection: Pure3D's ``editionUser`` by ``editionId``
    through ``edition``)."""

    collection: str
    field: str
    via: str | None = None  # None: the project collection

    @classmethod
    def of(cls, value) -> Link:
        """A link from a tuple ``(collection, field[, via])`` or a mapping with those keys."""
        if isinstance(value, Mapping):
            unknown = set(value) - set(cls._fields)
            if unknown or not {"collection", "field"} <= set(value):
                raise BadInput(f"a linked collection is {{collection, field, via?}}, not {dict(value)!r}")
            value = (value["collection"], value["field"], value.get("via"))
        if not isinstance(value, list | tuple) or len(value) not in (2, 3):
            raise BadInput(f"a linked collection is (collection, field[, via]), not {value!r}")
        link = cls(*value)
        if not all(isinstance(part, str) and part for part in link[:2]) or not (
                link.via is None or isinstance(link.via, str) and link.via):
            raise BadInput(f"a linked collection names its collection, field and via as text, not {value!r}")
        return link


@dataclass(frozen=True)
class DataModel:
    """Which collections make up a project, and the user data a project restore never touches.

    The default is the original's model: the ``project`` record by ``_id`` and the
    ``edition`` records whose ``projectId`` is the project's id. ``linked`` lists the other
    collections in the order their queries are made (``scopes.project_queries``): a link
    ``via`` another collection comes after that collection's own. ``MODELS`` holds the
    named presets (``pure3d`` adds ``editionUser`` by ``editionId`` through ``edition``);
    ``load_model`` reads a name or a file.
    """

    project_collection: str = "project"
    title_field: str = "title"  # what people call a project by (``scopes.scope_name``)
    linked: tuple[Link, ...] = (Link("edition", "projectId"),)
    user_collections: tuple[str, ...] = ("user", "projectUser")
    name: str = field(default="custom", compare=False)  # the preset's name or the file read: for people

    def __post_init__(self) -> None:
        links = tuple(Link.of(link) for link in self.linked)
        links = tuple(link._replace(via=link.via or self.project_collection) for link in links)
        object.__setattr__(self, "linked", links)
        object.__setattr__(self, "user_collections", tuple(self.user_collections))
        known = [self.project_collection]
        for link in links:
            if link.collection in known:
                raise BadInput(f"the data model names the collection {link.collection!r} twice")
            if link.via not in known:
                raise BadInput(f"{link.collection!r} is linked via {link.via!r}, which is not the project "
                               "collection or a linked collection named before it")
            known.append(link.collection)
        touched = set(known) & set(self.user_collections)
        if touched:
            raise BadInput(f"a project restore may not replace user data: {sorted(touched)}")

    @property
    def collections(self) -> tuple[str, ...]:
        """The project's collections, each after the one it is linked via."""
        return (self.project_collection, *(link.collection for link in self.linked))

    def describe(self) -> dict:
        """The model as its file would hold it (``load_model``)."""
        return {"project_collection": self.project_collection, "title_field": self.title_field,
                "linked": [link._asdict() for link in self.linked],
                "user_collections": list(self.user_collections)}


MODELS = {
    "original": DataModel(name="original"),
    "pure3d": DataModel(linked=(Link("edition", "projectId"), Link("editionUser", "editionId", "edition")),
                        name="pure3d"),
}
MODEL_KEYS = ("project_collection", "title_field", "linked", "user_collections")


def load_model(spec: str | os.PathLike | None) -> DataModel:
    """The data model ``spec`` names: a preset of ``MODELS`` (None: ``original``), or a JSON or
    TOML file holding ``DataModel``'s fields (``describe``; those left out keep the
    original's values). ``BadInput``, one line, for anything else."""
    if spec is None or str(spec) in MODELS:
        return MODELS[str(spec or "original")]
    path = Path(spec)
    if path.suffix not in (".json", ".toml"):
        raise BadInput(f"the data model is one of {', '.join(MODELS)} or a .json or .toml file, not {str(spec)!r}")
    try:
        text = path.read_text(encoding="utf-8")
        found = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:  # tomllib's and json's errors are ValueErrors
        raise BadInput(f"cannot read the data model from {path}: {exc}") from None
    if not isinstance(found, dict) or set(found) - set(MODEL_KEYS):
        keys = sorted(set(found) - set(MODEL_KEYS)) if isinstance(found, dict) else found
        raise BadInput(f"{path}: a data model holds {', '.join(MODEL_KEYS)}; not {keys!r}")
    texts = {key: found[key] for key in ("project_collection", "title_field") if key in found}
    if not all(isinstance(value, str) and value for value in texts.values()) or not all(
            isinstance(found.get(key, []), list) for key in ("linked", "user_collections")):
        raise BadInput(f"{path}: project_collection and title_field are text, linked and user_collections lists")
    return DataModel(**texts, **{key: tuple(found[key]) for key in ("linked", "user_collections") if key in found},
                     name=str(path))


@dataclass(frozen=True)
class RemoteSettings:
    """Where offsite copies go (``remote``): an S3 bucket, a prefix in it, the endpoint of an
    S3-compatible service (None: AWS itself), its region, and the file of the key that
    encrypts the copies on this machine (None: unencrypted). Credentials are boto3's own:
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an instance role."""

    bucket: str | None = None
    prefix: str = ""
    endpoint: str | None = None
    region: str | None = None
    key_file: Path | None = None

    def __post_init__(self) -> None:
        # A prefix is a folder of the bucket: no leading slash, one trailing slash.
        prefix = (self.prefix or "").strip("/")
        object.__setattr__(self, "prefix", f"{prefix}/" if prefix else "")
        if self.key_file is not None:
            object.__setattr__(self, "key_file", Path(self.key_file).absolute())

    @classmethod
    def from_env(cls) -> RemoteSettings:
        env = os.environ.get
        return cls(bucket=env(ENV_S3_BUCKET) or None, prefix=env(ENV_S3_PREFIX) or "",
                   endpoint=env(ENV_S3_ENDPOINT) or None, region=env(ENV_S3_REGION) or None,
                   key_file=env(ENV_REMOTE_KEY_FILE) or None)


@dataclass(frozen=True)
class Config:
    """Where the data lives and which database holds it.

    ``db_uri`` is ``mongodb://…/<name>`` for a MongoDB server (through pymongo) or
    ``None`` for the embedded database at ``<data dir>/db/<mode>``. ``site_key_file``
    holds the key that signs manifests (default ``<data dir>/backups/.site-key``, made at
    first use); ``backup_group``, when set, may read the backups (``privacy``); ``remote``
    says where offsite copies go. ``model`` says which records make a project: a
    ``DataModel``, or a preset's name or a model file (``load_model``).
    """

    data_dir: Path
    mode: str = "pilot"
    db_uri: str | None = None
    model: DataModel = field(default_factory=lambda: MODELS["original"])
    site_key_file: Path | None = None
    backup_group: str | None = None
    remote: RemoteSettings = field(default_factory=RemoteSettings)

    def __post_init__(self) -> None:
        if self.mode not in RUN_MODES:
            raise BadInput(f"run mode must be one of {', '.join(RUN_MODES)}, not {self.mode!r}")
        object.__setattr__(self, "data_dir", Path(self.data_dir).absolute())
        if not isinstance(self.model, DataModel):
            object.__setattr__(self, "model", load_model(self.model))
        if self.db_uri is not None:
            database_name(self.db_uri)  # a URI that cannot work is refused here, by every face
        if self.site_key_file is not None:
            object.__setattr__(self, "site_key_file", Path(self.site_key_file).absolute())

    @property
    def working_dir(self) -> Path:
        return self.data_dir / "working" / self.mode

    @property
    def backups_dir(self) -> Path:
        """The mode's backups: ``site/`` and ``project/<id>/`` below it."""
        return self.data_dir / "backups" / self.mode

    @property
    def backups_base(self) -> Path:
        """``backups/``: every mode's backups, the pool and the site key."""
        return self.data_dir / "backups"

    @property
    def site_key_path(self) -> Path:
        """The key that signs manifests: configured, or made at first use in ``backups/``."""
        return self.site_key_file or self.backups_base / ".site-key"

    @property
    def pool_dir(self) -> Path:
        """Shared by every mode of the data dir, so identical content is stored once."""
        return self.data_dir / "backups" / ".pool"

    @property
    def embedded_db_dir(self) -> Path:
        return self.data_dir / "db" / self.mode

    @property
    def embedded(self) -> bool:
        return self.db_uri is None

    @property
    def server_timeout_set(self) -> bool:
        """Does the URI set its own ``serverSelectionTimeoutMS`` (how long to look for the
        server)? If not, ``engines`` waits a few seconds, not pymongo's 30."""
        return bool(self.db_uri) and "serverSelectionTimeoutMS" in _parse_db_uri(self.db_uri)["options"]

    @classmethod
    def from_env(
        cls,
        data_dir: str | os.PathLike | None = None,
        mode: str | None = None,
        db_uri: str | None = None,
        model: str | os.PathLike | None = None,
    ) -> Config:
        """Arguments win over the environment; the data dir defaults to ``./data``, the data
        model to the original's (``load_model``: a preset's name or a file)."""
        data_dir = data_dir or os.environ.get(ENV_DATA_DIR) or "data"
        mode = mode or os.environ.get(ENV_MODE) or "pilot"
        db_uri = db_uri or os.environ.get(ENV_DB) or None
        model = load_model(model or os.environ.get(ENV_MODEL) or None)
        return cls(data_dir=Path(data_dir), mode=mode, db_uri=db_uri, model=model,
                   site_key_file=os.environ.get(ENV_SITE_KEY_FILE) or None,
                   backup_group=os.environ.get(ENV_BACKUP_GROUP) or None,
                   remote=RemoteSettings.from_env())


def database_name(uri: str) -> str:
    """The database a MongoDB URI names; ``BadInput`` (one line, never echoing the URI,
    which may hold a password) for any URI that is not ``mongodb[+srv]://host/<name>``
    with known options."""
    parsed = _parse_db_uri(uri)
    if not parsed.get("database"):
        raise BadInput("the database URI must name a database, as mongodb://host/<name>")
    return parsed["database"]


def _parse_db_uri(uri: str) -> dict:
    from pymongo.errors import ConfigurationError, InvalidURI
    from pymongo.uri_parser import parse_uri

    # An SRV URI is checked as a plain one: parsing it as SRV would look its host up in
    # DNS, and here only its form is judged.
    plain = "mongodb://" + uri[len("mongodb+srv://"):] if uri.startswith("mongodb+srv://") else uri
    try:
        return parse_uri(plain, warn=False)
    except (ConfigurationError, InvalidURI, ValueError) as exc:
        reason = " ".join(str(exc).split())
        raise BadInput(f"not a database URI (mongodb://host/<name> or mongodb+srv://host/<name>): {reason}") from None
