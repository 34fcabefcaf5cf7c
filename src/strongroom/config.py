"""Configuration: one frozen value, built from arguments or the environment. No globals.

Where the backups live (``backups_root``) is computed here and nowhere else: the
configured folder (``STRONGROOM_BACKUPS_DIR``), else Strongroom's own root inside the data
dir, ``backups/.strongroom/``, which the original module never lists (it lists the
folders of ``backups/<mode>/``, and a run mode's name never starts with a dot). A data dir
whose backups were made before that root existed (``backups/.pool`` and the site key
directly in ``backups/``, each mode's backups in ``backups/<mode>/``, beside the original
module's) keeps working where it is until ``strongroom migrate-layout`` moves it
(``repo.layout``). The run modes, and which of them are production (no user-triggered
change in the web face: ``policy``), are configuration too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from strongroom.errors import BadInput
from strongroom.ids import validate_mode_name

RUN_MODES = ("pilot", "test", "prod", "custom")  # the default list (the original's run modes)
PRODUCTION_MODES = ("prod",)  # the default: in these, backups are the system's job alone
OWN_ROOT = ".strongroom"  # Strongroom's own root in <data dir>/backups/ (the default)
LEGACY_MARKERS = (".pool", ".site-key")  # in <data dir>/backups/: backups made before OWN_ROOT
MOVING_SUFFIX = ".moving"  # <root>.moving: a ``migrate-layout`` under way (``repo.layout``)

ENV_DATA_DIR = "STRONGROOM_DATA_DIR"
ENV_MODE = "STRONGROOM_MODE"
ENV_MODES = "STRONGROOM_MODES"
ENV_PRODUCTION_MODES = "STRONGROOM_PRODUCTION_MODES"
ENV_BACKUPS_DIR = "STRONGROOM_BACKUPS_DIR"
ENV_DB = "STRONGROOM_DB"
ENV_MODEL = "STRONGROOM_MODEL"
ENV_SITE_KEY_FILE = "STRONGROOM_SITE_KEY_FILE"
ENV_BACKUP_GROUP = "STRONGROOM_BACKUP_GROUP"
ENV_S3_BUCKET = "STRONGROOM_S3_BUCKET"
ENV_S3_PREFIX = "STRONGROOM_S3_PREFIX"
ENV_S3_ENDPOINT = "STRONGROOM_S3_ENDPOINT"
ENV_S3_REGION = "STRONGROOM_S3_REGION"
ENV_REMOTE_KEY_FILE = "STRONGROOM_REMOTE_KEY_FILE"
ENV_LEASE_EXPIRY = "STRONGROOM_LEASE_EXPIRY"
ENV_LEASE_HEARTBEAT = "STRONGROOM_LEASE_HEARTBEAT"
ENV_WRITE_HOLD = "STRONGROOM_WRITE_HOLD"


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
    ``None`` for the embedded database at ``<data dir>/db/<mode>``. ``backups_location``
    is where the backups were configured to be (None: the default, see the module's
    docstring); ``backups_root``, computed from it, is the folder in use: it holds the
    pool, the site key and a folder per run mode. ``site_key_file`` holds the key
    that signs manifests (default ``<backups root>/.site-key``, made at first use);
    ``backup_group``, when set, may read the backups (``privacy``); ``remote`` says where
    offsite copies go. ``modes`` are the run modes (``mode`` is one of them), and
    ``production_modes`` those where nobody triggers a change through the web face (None:
    ``prod``, if it is one of the modes). ``model`` says which records make a project: a ``DataModel``,
    or a preset's name or a model file (``load_model``). ``lease_expiry``
    and ``lease_heartbeat`` (seconds): a job or an operation lease whose process has not
    beaten for ``lease_expiry`` is taken as dead (``repo.control``, ``repo.lease``); a live
    one beats every ``lease_heartbeat``. ``write_hold`` (seconds, 0: off): the longest a
    backup of the live site holds the host app's writes while it dumps the records and
    reads the files, so that a change made through the host is in it wholly or not at
    all (``repo.write_hold``).
    """

    data_dir: Path
    mode: str = "pilot"
    db_uri: str | None = None
    model: DataModel = field(default_factory=lambda: MODELS["original"])
    site_key_file: Path | None = None
    backup_group: str | None = None
    remote: RemoteSettings = field(default_factory=RemoteSettings)
    backups_location: Path | None = None
    modes: tuple[str, ...] = RUN_MODES
    production_modes: tuple[str, ...] | None = None  # None: those of PRODUCTION_MODES that are modes
    lease_expiry: float = 30.0
    lease_heartbeat: float = 5.0
    write_hold: float = 60.0
    backups_root: Path = field(init=False)  # from backups_location and the data dir

    def __post_init__(self) -> None:
        if not 0 < 2 * float(self.lease_heartbeat) <= float(self.lease_expiry):
            raise BadInput("the lease's heartbeat must be positive and at most half its expiry")
        if not 0 <= float(self.write_hold) < float("inf"):
            raise BadInput("the write hold must be a number of seconds, 0 or more (0: no hold)")
        modes = tuple(validate_mode_name(m) for m in self.modes)
        given = self.production_modes
        production = tuple(m for m in PRODUCTION_MODES if m in modes) if given is None else tuple(
            validate_mode_name(m) for m in given)
        if not modes:
            raise BadInput("give at least one run mode")
        if self.mode not in modes:
            raise BadInput(f"run mode must be one of {', '.join(modes)}, not {self.mode!r}")
        strays = [name for name in production if name not in modes]
        if strays:
            raise BadInput(f"production mode {strays[0]!r} is not one of the run modes ({', '.join(modes)})")
        object.__setattr__(self, "modes", modes)
        object.__setattr__(self, "production_modes", production)
        object.__setattr__(self, "data_dir", Path(self.data_dir).absolute())
        if not isinstance(self.model, DataModel):
            object.__setattr__(self, "model", load_model(self.model))
        if self.db_uri is not None:
            database_name(self.db_uri)  # a URI that cannot work is refused here, by every face
        if self.site_key_file is not None:
            object.__setattr__(self, "site_key_file", Path(self.site_key_file).absolute())
        if self.backups_location is not None:
            object.__setattr__(self, "backups_location", Path(self.backups_location).absolute())
        root = self.backups_location or default_backups_root(self.data_dir)
        object.__setattr__(self, "backups_root", _checked_root(self.data_dir, root, modes))

    @property
    def production(self) -> bool:
        """Is this run mode a production one (``policy``: no user-triggered change)?"""
        return self.mode in self.production_modes

    @property
    def working_dir(self) -> Path:
        return self.data_dir / "working" / self.mode

    @property
    def backups_dir(self) -> Path:
        """The mode's backups: ``site/`` and ``project/<id>/`` below it."""
        return self.backups_root / self.mode

    @property
    def backups_base(self) -> Path:
        """The backups root: every mode's backups, the pool and the site key."""
        return self.backups_root

    @property
    def backups_anchor(self) -> Path:
        """The folder below which no link is followed on the way to the backups
        (``nofollow``): the data dir, or the folder of a backups root that lies elsewhere."""
        return self.data_dir if self.backups_root.is_relative_to(self.data_dir) else self.backups_root.parent

    @property
    def shared_backups_dir(self) -> Path:
        """``<data dir>/backups``: the original module's folder, and the backups root of the
        layout before ``OWN_ROOT`` (``repo.layout``)."""
        return self.data_dir / "backups"

    @property
    def legacy_layout(self) -> bool:
        """Are the backups in the layout shared with the original module's folders?"""
        return self.backups_root == self.shared_backups_dir

    @property
    def site_key_path(self) -> Path:
        """The key that signs manifests: configured, or made at first use in the backups root."""
        return self.site_key_file or self.backups_base / ".site-key"

    @property
    def pool_dir(self) -> Path:
        """Shared by every mode of the data dir, so identical content is stored once."""
        return self.backups_root / ".pool"

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
        """This configuration as JSON, for a process of its own (``from_json``); the backups
        root in use is computed again there from ``backups_location``."""
        fields = dataclasses.asdict(self)
        fields.pop("backups_root")
        return json.dumps(fields, default=str)

    @classmethod
    def from_json(cls, text: str) -> Config:
        fields = json.loads(text)
        model = fields.pop("model")
        model = DataModel(model["project_collection"], model["title_field"],
                          tuple(Link(*link) for link in model["linked"]), tuple(model["user_collections"]),
                          model.get("name", "custom"))
        remote = RemoteSettings(**fields.pop("remote"))
        for name in ("modes", "production_modes"):
            fields[name] = fields[name] if fields[name] is None else tuple(fields[name])
        return cls(**fields, model=model, remote=remote)

    @classmethod
    def from_env(
        cls,
        data_dir: str | os.PathLike | None = None,
        mode: str | None = None,
        db_uri: str | None = None,
        *,
        backups_dir: str | os.PathLike | None = None,
        modes: str | None = None,
        production_modes: str | None = None,
        model: str | os.PathLike | None = None,
    ) -> Config:
        """Arguments win over the environment; the data dir defaults to ``./data``.
        ``modes`` and ``production_modes`` are lists separated by commas
        (``pilot,test,prod,custom``); the data model defaults to the original's (``load_model``:
        a preset's name or a file)."""
        env = os.environ.get
        data_dir = data_dir or env(ENV_DATA_DIR) or "data"
        mode = mode or env(ENV_MODE) or "pilot"
        db_uri = db_uri or env(ENV_DB) or None
        backups_dir = backups_dir or env(ENV_BACKUPS_DIR) or None
        model = load_model(model or env(ENV_MODEL) or None)
        modes = parse_modes(modes or env(ENV_MODES), RUN_MODES)
        production = parse_modes(production_modes if production_modes is not None else env(ENV_PRODUCTION_MODES),
                                 None)
        return cls(data_dir=Path(data_dir), mode=mode, db_uri=db_uri, model=model,
                   site_key_file=env(ENV_SITE_KEY_FILE) or None,
                   backup_group=env(ENV_BACKUP_GROUP) or None,
                   remote=RemoteSettings.from_env(),
                   backups_location=Path(backups_dir) if backups_dir else None,
                   modes=modes, production_modes=production, **_lease_from_env())


def parse_modes(text: str | None, default: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """``pilot, test,prod`` as a tuple of names (checked by ``Config``); ``default`` when
    not given. An empty string is an empty list (``STRONGROOM_PRODUCTION_MODES=``: none)."""
    if text is None:
        return default
    return tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))


def default_backups_root(data_dir: Path) -> Path:
    """``<data dir>/backups/.strongroom``, unless the data dir holds backups made in the
    layout before it (its pool or site key directly in ``backups/``) and they were not
    moved yet: then ``<data dir>/backups`` itself, where they are."""
    shared = data_dir / "backups"
    own = shared / OWN_ROOT
    if os.path.lexists(own):
        return own
    legacy = (*LEGACY_MARKERS, OWN_ROOT + MOVING_SUFFIX)
    return shared if any(os.path.lexists(shared / name) for name in legacy) else own


def _checked_root(data_dir: Path, root: Path, modes: tuple[str, ...]) -> Path:
    """A backups root that can work: not in the working folders (a site backup would take
    its own backups in), and not a run mode's folder of the original module's
    ``backups/`` or below one (its admin page would list Strongroom's folders)."""
    shared = data_dir / "backups"
    if root.is_relative_to(data_dir / "working"):
        raise BadInput(f"the backups root {root} lies in the working folders ({data_dir / 'working'}): "
                       "a site backup would hold its own backups")
    if any(root.is_relative_to(shared / mode) for mode in modes):
        raise BadInput(f"the backups root {root} lies in a run mode's folder of {shared}, where the original "
                       f"module would list its folders as its own backups; use {shared / OWN_ROOT}")
    return root


def _lease_from_env() -> dict:
    found = {}
    for name, variable in (("lease_expiry", ENV_LEASE_EXPIRY), ("lease_heartbeat", ENV_LEASE_HEARTBEAT),
                           ("write_hold", ENV_WRITE_HOLD)):
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
