"""Configuration: one frozen value, built from arguments or the environment. No globals."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from strongroom.errors import BadInput

RUN_MODES = ("pilot", "test", "prod")

ENV_DATA_DIR = "STRONGROOM_DATA_DIR"
ENV_MODE = "STRONGROOM_MODE"
ENV_DB = "STRONGROOM_DB"
ENV_SITE_KEY_FILE = "STRONGROOM_SITE_KEY_FILE"
ENV_BACKUP_GROUP = "STRONGROOM_BACKUP_GROUP"
ENV_S3_BUCKET = "STRONGROOM_S3_BUCKET"
ENV_S3_PREFIX = "STRONGROOM_S3_PREFIX"
ENV_S3_ENDPOINT = "STRONGROOM_S3_ENDPOINT"
ENV_S3_REGION = "STRONGROOM_S3_REGION"
ENV_REMOTE_KEY_FILE = "STRONGROOM_REMOTE_KEY_FILE"
ENV_LEASE_EXPIRY = "STRONGROOM_LEASE_EXPIRY"
ENV_LEASE_HEARTBEAT = "STRONGROOM_LEASE_HEARTBEAT"


@dataclass(frozen=True)
class DataModel:
    """Which collections make up a project, and the user data a project restore never touches.

    The default is the original's model: the ``project`` record by ``_id`` and the
    ``edition`` records whose ``projectId`` is the project's id.
    """

    project_collection: str = "project"
    title_field: str = "title"  # what people call a project by (``scopes.scope_name``)
    linked: tuple[tuple[str, str], ...] = (("edition", "projectId"),)
    user_collections: tuple[str, ...] = ("user", "projectUser")

    def __post_init__(self) -> None:
        touched = {self.project_collection, *(name for name, _ in self.linked)}
        if touched & set(self.user_collections):
            raise BadInput(f"a project restore may not replace user data: {sorted(touched & set(self.user_collections))}")


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
says where offsite copies go. ``lease_expiry`` and ``lease_heartbeat`` (seconds): a
    job or an operation lease whose process has not beaten for ``lease_expiry`` is taken
    as dead (``repo.control``, ``repo.lease``); a live one beats every ``lease_heartbeat``.
    """

    data_dir: Path
    mode: str = "pilot"
    db_uri: str | None = None
    model: DataModel = field(default_factory=DataModel)
    site_key_file: Path | None = None
    backup_group: str | None = None
    remote: RemoteSettings = field(default_factory=RemoteSettings)
    lease_expiry: float = 30.0
    lease_heartbeat: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < 2 * float(self.lease_heartbeat) <= float(self.lease_expiry):
            raise BadInput("the lease's heartbeat must be positive and at most half its expiry")
        if self.mode not in RUN_MODES:
            raise BadInput(f"run mode must be one of {', '.join(RUN_MODES)}, not {self.mode!r}")
        object.__setattr__(self, "data_dir", Path(self.data_dir).absolute())
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

    def to_json(self) -> str:
        """This configuration as JSON, for a process of its own (``from_json``)."""
        return json.dumps(dataclasses.asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> Config:
        fields = json.loads(text)
        model = fields.pop("model")
        model = DataModel(model["project_collection"], model["title_field"],
                          tuple(tuple(pair) for pair in model["linked"]), tuple(model["user_collections"]))
        remote = RemoteSettings(**fields.pop("remote"))
        return cls(**fields, model=model, remote=remote)

    @classmethod
    def from_env(
        cls,
        data_dir: str | os.PathLike | None = None,
        mode: str | None = None,
        db_uri: str | None = None,
    ) -> Config:
        """Arguments win over the environment; the data dir defaults to ``./data``."""
        data_dir = data_dir or os.environ.get(ENV_DATA_DIR) or "data"
        mode = mode or os.environ.get(ENV_MODE) or "pilot"
        db_uri = db_uri or os.environ.get(ENV_DB) or None
        return cls(data_dir=Path(data_dir), mode=mode, db_uri=db_uri,
                   site_key_file=os.environ.get(ENV_SITE_KEY_FILE) or None,
                   backup_group=os.environ.get(ENV_BACKUP_GROUP) or None,
                   remote=RemoteSettings.from_env(), **_lease_from_env())


def _lease_from_env() -> dict:
    found = {}
    for name, variable in (("lease_expiry", ENV_LEASE_EXPIRY), ("lease_heartbeat", ENV_LEASE_HEARTBEAT)):
        value = os.environ.get(variable)
        if value:
            try:
                found[name] = float(value)
            except ValueError:
                raise BadInput(f"{variable} must be a number of seconds, not {value!r}") from None
    return found


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
