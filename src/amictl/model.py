"""Images, snapshots, references and the inventory, as plain dataclasses.

The inventory is the ground truth every decision stands on. It keeps indexes
(image -> references, snapshot -> images, family -> versions) and knows which
(account, region, kind) slices could not be read.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from functools import cached_property
from operator import attrgetter, itemgetter
from typing import Any

from .memory import gc_paused
from .tagnames import FAMILY_TAG
from .versions import NAME_VERSION
from .versions import version_key as version_key  # the one version order

UTC = dt.UTC

# Reference kinds that mean "something can still launch it" (policy.md, "What in use means").
IN_USE_KINDS = (
    "instance",
    "launch-template-version",
    "launch-configuration",
    "auto-scaling-group",
    "ssm-parameter",
    "channel",
    "aws-reference",  # AWS's own DescribeImageReferences (amictl.governance.references)
    "consumer-account",  # another account launches it (image usage report, governance.usage)
    "iac",  # the team's infrastructure code names it (amictl.iac: Terraform, CloudFormation, Packer)
    "beanstalk-environment",  # its ImageId option (inventory.launchers.beanstalk)
    "cloudformation-stack",  # an image parameter or template literal (launchers.cloudformation)
    "imagebuilder-distribution",  # an image id it names (inventory.launchers.imagebuilder)
    "imagebuilder-recipe",  # a recipe's parent image (inventory.launchers.imagebuilder)
    "spot-request",  # an open or persistent Spot request (inventory.launchers.spot)
    "spot-fleet",  # a Spot Fleet request that can still launch (inventory.launchers.fleets)
    "ec2-fleet",  # an EC2 Fleet's ImageId override (inventory.launchers.fleets)
    "emr-cluster",  # an EMR cluster's CustomAmiId (inventory.launchers.emr)
    "batch-compute-environment",  # a Batch compute environment (inventory.launchers.batch)
)

IN_USE = frozenset(IN_USE_KINDS)  # the same kinds, for membership tests

DEFAULT_NAME_PATTERN = rf"^(?P<family>[a-z0-9][a-z0-9-]*?)-v?(?P<version>{NAME_VERSION})$"
# what CreateImage ("Created by CreateImage(i-...) for ami-...") and CopyImage ("Copied for
# DestinationAmi ami-...") write in a snapshot's description: one match for either
MADE_FOR_RE = re.compile(
    r"^(?:Created by CreateImage\([^)]*\) for |Copied for DestinationAmi )(ami-[0-9a-f]+)"
)


@functools.lru_cache(maxsize=1024)  # the planner asks twice of each orphan, one after the other
def made_for_image(description: str | None) -> str | None:
    """The image id in a snapshot description written by CreateImage or CopyImage."""
    m = MADE_FOR_RE.match(description or "")
    return m.group(1) if m else None


def parse_time(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        # one shared tzinfo (botocore gives each timestamp its own tzutc() instance)
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    s = str(value).strip().replace("Z", "+00:00")
    t = dt.datetime.fromisoformat(s)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def iso(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hash_joined(h: Any, texts: list[str], chunk: int = 4096) -> None:
    """Feed ``("[" + ", ".join(texts) + "]").encode()`` to ``h`` in pieces (the same
    bytes): with the items' reprs, the repr of their list."""
    h.update(b"[")
    for start in range(0, len(texts), chunk):
        piece = ", ".join(texts[start : start + chunk])
        h.update(((", " if start else "") + piece).encode())
    h.update(b"]")


def _fingerprint_row(i: Image) -> tuple[Any, ...]:
    """What the fingerprint reads of an image."""
    return (
        i.image_id,
        i.state,
        sorted(i.tags.items()),
        [b.get("snapshot_id") for b in i.block_devices],
        i.deprecation_time.isoformat() if i.deprecation_time else "",
        i.shared_with,
        i.public,
    )


def _fingerprint_row_text(i: Image) -> str:
    """``repr(_fingerprint_row(i))``, made from the reprs of its parts: a tuple's (of more
    than one item) and a list's repr are their items' reprs, joined, in brackets."""
    tags = ", ".join([f"({k!r}, {v!r})" for k, v in sorted(i.tags.items())])
    snaps = ", ".join([repr(b.get("snapshot_id")) for b in i.block_devices])
    dep = i.deprecation_time.isoformat() if i.deprecation_time else ""
    return (
        f"({i.image_id!r}, {i.state!r}, [{tags}], [{snaps}], {dep!r}, "
        f"{i.shared_with!r}, {i.public!r})"
    )


def _references_text(refs: list[Reference]) -> str:
    """``repr(sorted([(r.image_id, r.kind, r.id) for r in refs]))``, without comparing
    tuples: three stable sorts on C keys, least significant first, give the tuples' order
    (equal tuples are alike), and each tuple's repr made from its parts' (a tuple's repr
    builds slowly)."""
    rows = sorted(refs, key=attrgetter("id"))
    rows.sort(key=attrgetter("kind"))
    rows.sort(key=attrgetter("image_id"))
    return "[" + ", ".join([f"({r.image_id!r}, {r.kind!r}, {r.id!r})" for r in rows]) + "]"


def now_iso() -> str:
    """The current time as :func:`iso` writes it (the state store's timestamps)."""
    return iso(dt.datetime.now(UTC)) or ""


@dataclass(slots=True)
class Snapshot:
    snapshot_id: str
    account: str
    region: str
    size_gib: int
    start_time: dt.datetime | None = None
    description: str = ""
    owner_id: str = ""
    storage_tier: str = "standard"
    encrypted: bool = False
    state: str = "completed"
    tags: dict[str, str] = field(default_factory=dict)
    # EBS snapshot lock (DescribeLockedSnapshots): governance | compliance |
    # compliance-cooloff | expired; its expiry and cooling-off end as ISO times
    lock_state: str | None = None
    lock_until: str | None = None
    lock_cooloff_until: str | None = None

    @property
    def made_for_image(self) -> str | None:
        """The image AWS says the snapshot was made for, from the description AWS writes
        (``Created by CreateImage(i-...) for ami-...`` / ``Copied for DestinationAmi
        ami-...``). Never from a tag: tags are copied by backup tools and set by anyone."""
        return made_for_image(self.description)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["start_time"] = iso(self.start_time)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Snapshot:
        d = dict(d)
        d["start_time"] = parse_time(d.get("start_time"))
        return cls(**d)


@dataclass(slots=True)
class Image:
    image_id: str
    account: str
    region: str
    name: str = ""
    owner_id: str = ""
    state: str = "available"
    created_at: dt.datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)
    architecture: str = ""
    platform: str = "linux"
    public: bool = False
    shared_with: list[str] = field(default_factory=list)
    deprecation_time: dt.datetime | None = None
    last_launched_time: dt.datetime | None = None
    deregistration_protection: str = "disabled"
    source_image_id: str | None = None
    source_image_region: str | None = None
    block_devices: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""
    family: str | None = None
    version: str | None = None
    imds_support: str | None = None  # "v2.0": instances launched from it require IMDSv2
    root_device_type: str = "ebs"  # "instance-store": root is an S3 bundle, no snapshots
    image_location: str | None = None  # instance-store images: BUCKET/PATH.manifest.xml
    # its newest CreateStoreImageTask (DescribeStoreImageTasks): InProgress | Completed |
    # Failed, and the S3 object it writes (s3://bucket/key)
    store_task: str | None = None
    stored_to: str | None = None
    # Where shared_with came from: "live" (read by this scan), "cached" (the state store's
    # launch-permission cache, read at lp_read_at) or "unread" (not read: no decision needed it).
    lp: str = "live"
    lp_read_at: dt.datetime | None = None
    # Amazon Inspector's DescribeImages ScanResults, times as ISO text (None: not scanned);
    # amictl.findings reads it (issue 28)
    scan_results: dict[str, str] | None = None
    # The SourceImageId of each watermark it carries (DescribeImages ImageWatermarks): the
    # watermarked images it was built or copied from; amictl revoke follows them (issue 28)
    watermark_sources: list[str] = field(default_factory=list)

    @property
    def owned(self) -> bool:
        return self.owner_id == self.account

    @property
    def snapshot_ids(self) -> list[str]:
        return [b["snapshot_id"] for b in self.block_devices if b.get("snapshot_id")]

    @property
    def size_gib(self) -> int:
        return sum(int(b.get("size_gib") or 0) for b in self.block_devices)

    @property
    def protected(self) -> bool:
        p = self.deregistration_protection or "disabled"
        if p == "disabled":
            return False
        if p.startswith("enabled"):
            return True
        if p.startswith("disabled-until "):
            until = parse_time(p.split(" ", 1)[1])
            return until is not None and until > dt.datetime.now(UTC)
        return False

    @property
    def shared(self) -> bool:
        return self.public or bool(self.shared_with)

    def deprecated_at(self, now: dt.datetime) -> bool:
        return self.deprecation_time is not None and self.deprecation_time <= now

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in IMAGE_TIMES:
            d[k] = iso(getattr(self, k))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Image:
        d = dict(d)
        for k in IMAGE_TIMES:
            d[k] = parse_time(d.get(k))
        return cls(**d)


IMAGE_TIMES = ("created_at", "deprecation_time", "last_launched_time", "lp_read_at")


@dataclass(frozen=True, slots=True)
class Reference:
    """Something that can still launch (or depends on) an image."""

    kind: str
    id: str
    detail: str
    image_id: str
    account: str
    region: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SliceStatus:
    """One (account, region, kind) scan: complete, or the error that stopped it."""

    account: str
    region: str
    kind: str
    complete: bool
    items: int = 0
    error_code: str | None = None
    error: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FamilyRule:
    tag: str = FAMILY_TAG
    version_tag: str = "version"
    name_pattern: str = DEFAULT_NAME_PATTERN

    def resolve(self, image: Image) -> tuple[str | None, str | None]:
        fam = image.tags.get(self.tag)
        ver = image.tags.get(self.version_tag)
        if fam and ver:
            return fam, ver
        m = re.match(self.name_pattern, image.name or "")
        if m:
            return fam or m.group("family"), ver or m.group("version")
        return fam, ver


@dataclass
class Inventory:
    images: list[Image] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    slices: list[SliceStatus] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    scanned_at: dt.datetime | None = None
    api_calls: dict[str, int] = field(default_factory=dict)
    duration: float = 0.0

    # ---- completeness
    @property
    def complete(self) -> bool:
        return all(s.complete for s in self.slices)

    def incomplete_slices(
        self, account: str | None = None, region: str | None = None
    ) -> list[SliceStatus]:
        return [
            s
            for s in self.slices
            if not s.complete
            and (account is None or s.account == account)
            and (region is None or s.region == region)
        ]

    @cached_property
    def incomplete_index(self) -> dict[tuple[str, str], list[SliceStatus]]:
        """(account, region) -> incomplete slices; (account, "*") -> all of the account's."""
        out: dict[tuple[str, str], list[SliceStatus]] = defaultdict(list)
        for s in self.slices:
            if not s.complete:
                out[(s.account, s.region)].append(s)
                out[(s.account, "*")].append(s)
        return dict(out)

    def slice_complete(self, account: str, region: str) -> bool:
        return (account, region) not in self.incomplete_index

    # ---- indexes
    @cached_property
    def by_id(self) -> dict[str, Image]:
        return {i.image_id: i for i in self.images}

    @cached_property
    def snapshot_by_id(self) -> dict[str, Snapshot]:
        return {s.snapshot_id: s for s in self.snapshots}

    @cached_property
    def refs_by_image(self) -> dict[str, list[Reference]]:
        out: dict[str, list[Reference]] = defaultdict(list)
        for r in self.references:
            out[r.image_id].append(r)
        for img in self.images:
            if img.source_image_id and img.source_image_id in self.by_id:
                out[img.source_image_id].append(
                    Reference(
                        "child-image",
                        img.image_id,
                        f"{img.name} was built from it",
                        img.source_image_id,
                        img.account,
                        img.region,
                    )
                )
            if img.public:
                out[img.image_id].append(
                    Reference(
                        "shared-account",
                        "public",
                        "launch permission: public",
                        img.image_id,
                        img.account,
                        img.region,
                    )
                )
            for target in img.shared_with:
                out[img.image_id].append(
                    Reference(
                        "shared-account",
                        target,
                        "launch permission",
                        img.image_id,
                        img.account,
                        img.region,
                    )
                )
        return dict(out)

    def refs(self, image_id: str) -> list[Reference]:
        return self.refs_by_image.get(image_id, [])

    @cached_property
    def images_by_snapshot(self) -> dict[str, list[Image]]:
        out: dict[str, list[Image]] = defaultdict(list)
        for img in self.images:
            for b in img.block_devices:  # img.snapshot_ids, without making the list
                sid = b.get("snapshot_id")
                if sid:
                    out[sid].append(img)
        return dict(out)

    @cached_property
    def families(self) -> dict[tuple[str, str, str], list[Image]]:
        """(account, region, family) -> images, newest version first (ties: newest CreationDate)."""
        out: dict[tuple[str, str, str], list[Image]] = defaultdict(list)
        keys: dict[str | None, tuple[Any, ...]] = {}  # version -> its key, made once
        for img in self.images:
            if img.family and img.owned:
                out[(img.account, img.region, img.family)].append(img)
                if img.version not in keys:
                    keys[img.version] = version_key(img.version)
        epoch = dt.datetime(1970, 1, 1, tzinfo=UTC)
        for imgs in out.values():
            if len(imgs) > 1:
                imgs.sort(
                    key=lambda i: (keys[i.version], i.created_at or epoch, i.image_id),
                    reverse=True,
                )
        return dict(out)

    def resolve_families(self, rule: FamilyRule) -> None:
        if self.__dict__.get("_family_rule") == rule:
            return
        self.__dict__["_family_rule"] = rule
        with gc_paused():
            for img in self.images:
                img.family, img.version = rule.resolve(img)
        self.__dict__.pop("families", None)

    def build_indexes(self) -> None:
        """Build every index and the fingerprint now (the scanner does, once per inventory),
        the garbage collector paused (no cycles are made)."""
        with gc_paused(promote=True):
            self._build_indexes()

    def _build_indexes(self) -> None:
        _ = (
            self.by_id,
            self.snapshot_by_id,
            self.refs_by_image,
            self.images_by_snapshot,
            self.families,
            self.incomplete_index,
        )
        self.fingerprint()

    def facts_changed(self) -> None:
        """Launch permissions were read into some images: drop what was derived from them."""
        for key in ("refs_by_image", "_fingerprint"):
            self.__dict__.pop(key, None)

    @cached_property
    def children(self) -> dict[str, list[str]]:
        """image id -> the images built or copied from it (SourceImageId / lineage tag)."""
        out: dict[str, list[str]] = defaultdict(list)
        for img in self.images:
            if img.source_image_id:
                out[img.source_image_id].append(img.image_id)
        return dict(out)

    def children_of(self, image_id: str) -> list[Image]:
        return [self.by_id[c] for c in self.children.get(image_id, [])]

    def descendants(self, roots: set[str]) -> set[str]:
        """Every image built or copied from one of ``roots``, at any depth (not the roots)."""
        out: set[str] = set()
        todo = list(roots)
        while todo:
            for c in self.children.get(todo.pop(), []):
                if c not in out:
                    out.add(c)
                    todo.append(c)
        return out - roots

    def merge(self, other: Inventory) -> None:
        """Add another scan's images, snapshots, references, slices, scope and call counts
        (a view that spans several scans); every derived index is rebuilt on next use."""
        self.images.extend(other.images)
        self.snapshots.extend(other.snapshots)
        self.references.extend(other.references)
        self.slices.extend(other.slices)
        self.accounts = sorted({*self.accounts, *other.accounts})
        self.regions = sorted({*self.regions, *other.regions})
        for k, v in other.api_calls.items():
            self.api_calls[k] = self.api_calls.get(k, 0) + v
        for key in [k for k, v in vars(Inventory).items() if isinstance(v, cached_property)]:
            self.__dict__.pop(key, None)
        self.__dict__.pop("_fingerprint", None)

    # ---- identity
    def fingerprint(self) -> str:
        """A digest of what decisions depend on: images (state, tags, snapshots, sharing),
        snapshots, references and slice completeness. Cached: an inventory is not changed
        once scanned."""
        if "_fingerprint" in self.__dict__:
            return str(self.__dict__["_fingerprint"])
        h = hashlib.sha256()
        if len(self.by_id) == len(self.images):
            # ids unique: the rows in id order (the tuples' order), each row's repr made
            # from its parts' (the same text, without building the row)
            texts = [(i.image_id, _fingerprint_row_text(i)) for i in self.images]
            texts.sort(key=itemgetter(0))
            _hash_joined(h, [t for _, t in texts])
        else:
            rows = [_fingerprint_row(i) for i in self.images]
            rows.sort()
            _hash_joined(h, list(map(repr, rows)))
        h.update(repr(sorted([s.snapshot_id for s in self.snapshots])).encode())
        h.update(_references_text(self.references).encode())
        h.update(
            repr(sorted((s.account, s.region, s.kind, s.complete) for s in self.slices)).encode()
        )
        self.__dict__["_fingerprint"] = h.hexdigest()
        return str(self.__dict__["_fingerprint"])

    def to_dict_head(self) -> dict[str, Any]:
        """``to_dict()`` with the images, snapshots and references lists left to the caller
        (None): the state store encodes them one by one."""
        return {**self.to_dict(lists=False), "images": None, "snapshots": None, "references": None}

    def to_dict(self, lists: bool = True) -> dict[str, Any]:
        head = {
            "complete": self.complete,
            "accounts": self.accounts,
            "regions": self.regions,
            "scanned_at": iso(self.scanned_at),
            "duration": self.duration,
            "api_calls": self.api_calls,
            "slices": [s.to_dict() for s in self.slices],
        }
        if not lists:
            return head
        return {
            **head,
            "images": [i.to_dict() for i in self.images],
            "snapshots": [s.to_dict() for s in self.snapshots],
            "references": [r.to_dict() for r in self.references],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Inventory:
        return cls(
            images=[Image.from_dict(x) for x in d.get("images", [])],
            snapshots=[Snapshot.from_dict(x) for x in d.get("snapshots", [])],
            references=[Reference(**x) for x in d.get("references", [])],
            slices=[SliceStatus(**x) for x in d.get("slices", [])],
            accounts=list(d.get("accounts", [])),
            regions=list(d.get("regions", [])),
            scanned_at=parse_time(d.get("scanned_at")),
            api_calls=dict(d.get("api_calls", {})),
            duration=float(d.get("duration", 0.0)),
        )
