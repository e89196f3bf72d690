"""The live view apply decides on: read just before the actions it guards.

For a wave of actions in one (account, region) (``amictl.apply.pipeline``), apply reads
that region as the inventory does (every reference kind, channels and their history
included) and evaluates it with the planner's own decision function (``amictl.keep``).
Nothing is cached from one wave to the next: every reference kind is as fresh as the wave,
and every read of it begins after the actions the wave's actions depend on finished. The
reads are shared by the wave's actions: each listing is paginated once for all of them;
only what AWS answers for one id at a time (launch permissions, a snapshot's
createVolumePermission) is read per image or snapshot, in parallel. What needs only the
wave's ids (the launch permissions of its images, AWS's reference check of them, the
sharing of its snapshots) is read alongside the listings; what needs the listings (the
images built from the wave's, copies in other regions) after them.

What it reads, per wave:

- image actions: every kind of the region (images, snapshots, instances, launch
  templates and all their versions, launch configurations, ASGs, SSM parameters and
  channel histories); the launch permissions of the batch's images and of every image
  built from them; and the images of the plan's other regions of the same account, to
  find copies and children made since the plan (a region holding one is read whole,
  so that whether the copy is kept is decided as a fresh plan would).
- snapshot actions: the region's images and snapshots, and each snapshot's
  createVolumePermission; for a deregister, also the createVolumePermission of the
  snapshots the plan deletes right after it (DeleteAssociatedSnapshots is decided on them).
- the team's infrastructure code (``amictl.iac``): the paths the plan's policy carries
  (its ``iac:`` key and ``plan --iac``; the policy part of a plan is covered by its
  checksum and signature, so an edited plan that drops them is refused as unsigned), read
  again for every wave of image actions. A file that cannot be read or parsed now makes
  the view incomplete (kind ``iac``): nothing is retired.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from .. import interrupts
from ..aws.session import Connector, Target
from ..channels.record import add_recorded_history
from ..errors import AmictlError
from ..governance.references import PERMISSIONS as AWS_REFERENCE_PERMISSIONS
from ..governance.references import aws_image_references
from ..governance.usage import PERMISSIONS as USAGE_PERMISSIONS
from ..governance.usage import consumer_references
from ..iac import IacError, add_iac_references, iac_unreadable
from ..inventory.collectors import (
    Sharing,
    read_launch_permissions,
    read_sharing_into,
    set_sharing,
)
from ..inventory.kinds import COLLECTORS
from ..inventory.scan import scan
from ..model import FamilyRule, Image, Inventory
from ..state.store import Store

T = TypeVar("T")

IMAGE_KINDS = list(COLLECTORS)
SNAPSHOT_KINDS = ["images", "snapshots"]
# What the live view reads (registered for `amictl iam-policy apply`).
VIEW_PERMISSIONS = tuple(
    sorted(
        {p for spec in COLLECTORS.values() for p in spec.permissions}
        | {"ec2:DescribeSnapshotAttribute", "ec2:DescribeImageAttribute"}
        | AWS_REFERENCE_PERMISSIONS
        | USAGE_PERMISSIONS
    )
)
READ_WORKERS = 8
RE_READS = 2
GONE_IMAGE = {"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidAMIID.Malformed"}
GONE_SNAPSHOT = {"InvalidSnapshot.NotFound", "InvalidSnapshotID.Malformed"}  # no such snapshot
TRANSIENT = {
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "Unavailable",
    "RequestTimeout",
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
}


@dataclass
class View:
    """A live view of one account/region (plus the copies found elsewhere)."""

    target: Target
    inventory: Inventory
    snapshot_shares: dict[str, list[str]] = field(default_factory=dict)

    @property
    def error(self) -> str | None:
        bad = self.inventory.incomplete_slices(self.target.account, self.target.region)
        return "; ".join(f"{s.kind}: {s.error_code}" for s in bad) if bad else None


class LiveReader:
    """Reads views for apply. ``regions``: account -> the regions the plan covered."""

    def __init__(
        self,
        connector: Connector,
        family_rule: FamilyRule,
        regions: dict[str, list[str]],
        store: Store | None = None,
        iac: tuple[str, ...] = (),
        every_region: bool = False,
    ) -> None:
        self.connector = connector
        self.family_rule = family_rule
        self.regions = regions
        # look for copies and children in every enabled region of the account, not only
        # the plan's and the given ones (single-image commands, given one --region)
        self.every_region = every_region
        self.store = store  # amictl's record of channel promotions (rollback targets)
        self.iac = iac  # the team's infrastructure code, re-read for every view
        self._given: dict[str, list[str]] = {}  # account -> the regions this apply was given

    def _scan(self, target: Target, kinds: list[str]) -> Inventory:
        """The kinds of one account/region. A slice that failed on throttling or a server
        error (after botocore's own retries) is read again, up to ``RE_READS`` times, with
        the rest of the view: a view is decided on only when every kind was read."""
        inv = self._scan_once(target, kinds)
        for _ in range(RE_READS):
            bad = inv.incomplete_slices()
            if not bad or not all(s.error_code in TRANSIENT for s in bad):
                break
            inv = self._scan_once(target, kinds)
        return inv

    def _scan_once(self, target: Target, kinds: list[str]) -> Inventory:
        return scan(
            self.connector,
            [target],
            kinds=kinds,
            family_rule=self.family_rule,
            launch_permissions=False,
            workers=len(kinds),
        )

    def _permissions(
        self, target: Target, images: list[Image], early: dict[str, Sharing | None] | None = None
    ) -> None:
        """Launch permissions into ``images``: those read alongside the view's listings
        (``early``, for the wave's own images) are used, the rest read now."""
        todo = [i for i in images if i.lp == "unread" and i.state != "disabled"]
        for img in images:
            if img.state == "disabled":
                img.lp = "live"  # a disabled image cannot be launched by anyone
        rest = []
        for img in todo:
            got = (early or {}).get(img.image_id)
            if got is None:
                rest.append(img)  # not read early, or AWS said it was gone then
                continue
            set_sharing(img, got)
        todo = rest
        if not todo:
            return
        ec2 = self.connector.client("ec2", target.region, target.role_arn)
        read_sharing_into(ec2, todo, READ_WORKERS)

    def read(self, target: Target, image_ids: set[str], snapshot_ids: set[str]) -> View:
        """The view of ``target`` for a wave. The reads that need only the wave's ids (AWS's
        reference check of its images, the createVolumePermission of its snapshots) run
        alongside the listings; every one of them begins when the view is asked for."""
        kinds = IMAGE_KINDS if image_ids else SNAPSHOT_KINDS
        ec2 = self.connector.client("ec2", target.region, target.role_arn)
        with interrupts.Pool(3) as side:
            # AWS's own reference check, a reason to keep like any other reference; when it
            # cannot be asked (no permission, no API) amictl's graph alone decides.
            asked = (
                side.submit(aws_image_references, self.connector, target, sorted(image_ids))
                if image_ids
                else None
            )
            early = side.submit(_shares_of, ec2, sorted(snapshot_ids))
            perms = side.submit(_sharing_of, ec2, sorted(image_ids))
            inv = self._scan(target, kinds)
            if image_ids:
                self.add_copies(target, inv, image_ids, perms.result())
            shares = early.result()
            refs = asked.result()[0] if asked is not None else []
        if image_ids:
            inv.references.extend(refs)
            shared = [i for i in inv.images if i.image_id in image_ids and i.shared]
            if shared:  # other accounts still launching a shared image keep it
                inv.references.extend(consumer_references(self.connector, target, shared))
            inv.facts_changed()
            if self.store is not None:
                add_recorded_history(inv, self.store)
            if self.iac:  # after the SSM references: a channel the code follows resolves
                try:
                    add_iac_references(inv, self.iac)
                except IacError as exc:
                    iac_unreadable(inv, target.account, target.region, exc)
        view = View(target, inv)
        for sid in sorted(s for s in snapshot_ids if s in inv.snapshot_by_id):
            # a snapshot the listing shows whose sharing read found it gone (a race: the
            # listing began first) is read again, and an error then fails the view
            got = shares.get(sid)
            view.snapshot_shares[sid] = got if got is not None else snapshot_shares(ec2, sid)
        return view

    def add_copies(
        self,
        target: Target,
        inv: Inventory,
        image_ids: set[str],
        early: dict[str, Sharing | None] | None = None,
    ) -> None:
        """Merge into ``inv`` the copies and children of ``image_ids`` in the account's
        other regions (see ``_with_copies``), with the launch permissions of the images and
        of every image built from them read live (``early``: those of ``target``'s region
        read alongside its listings)."""
        self._with_copies(target, inv, image_ids)
        by_region: dict[str, list[Image]] = {}
        wanted = image_ids | inv.descendants(image_ids)
        for img in inv.images:
            if img.image_id in wanted:
                by_region.setdefault(img.region, []).append(img)
        for region, imgs in by_region.items():
            here = early if region == target.region else None
            self._permissions(Target(target.account, region, target.role_arn), imgs, here)

    def _copy_regions(self, target: Target) -> list[str]:
        """The other regions to look for copies in: the plan's, and the regions this apply
        was given (``--region``, ``all`` = every enabled region). The plan file's list alone
        is not trusted: an edited plan could leave a copy's region out."""
        if target.account not in self._given:
            try:
                self._given[target.account] = (
                    self.connector.enabled_regions(target.role_arn)
                    if self.every_region
                    else self.connector.regions(target.role_arn)
                )
            except AmictlError:
                self._given[target.account] = []  # the plan's regions still stand
        plan = set(self.regions.get(target.account, []))
        return sorted((plan | set(self._given[target.account])) - {target.region})

    def _with_copies(self, target: Target, inv: Inventory, image_ids: set[str]) -> None:
        """Images of the other regions built or copied from the region's images, to a
        fixed point (a copy of a copy): a region holding one is read whole and merged into
        the view, and its images become sources in turn."""
        others = self._copy_regions(target)
        if not others:
            return
        local = {i.image_id for i in inv.images}
        listings: dict[str, Inventory] = {}
        for region in others:
            t = Target(target.account, region, target.role_arn)
            listing = self._scan(t, ["images"])
            if listing.incomplete_slices():
                inv.merge(listing)  # unreadable: the decision blocks ancestors (see keep)
                continue
            listings[region] = listing
        changed = True
        while changed:
            changed = False
            for region, listing in sorted(listings.items()):
                if any(i.source_image_id in local for i in listing.images):
                    full = self._scan(Target(target.account, region, target.role_arn), IMAGE_KINDS)
                    inv.merge(full)
                    local |= {i.image_id for i in full.images}
                    del listings[region]
                    changed = True
                    break


def _sharing_of(ec2: Any, ids: list[str]) -> dict[str, Sharing | None]:
    """The launch permissions of each image, in parallel; None for one AWS says is gone
    (the listing decides whether it is)."""
    return _each(lambda i: read_launch_permissions(ec2, i), ids, GONE_IMAGE)


def _shares_of(ec2: Any, ids: list[str]) -> dict[str, list[str] | None]:
    """The createVolumePermission of each snapshot, in parallel; None for one AWS says is
    gone (the listing decides whether it is)."""
    return _each(lambda s: snapshot_shares(ec2, s), ids, GONE_SNAPSHOT)


def _each(read: Callable[[str], T], ids: list[str], gone: Iterable[str]) -> dict[str, T | None]:
    """``read`` of each id, READ_WORKERS at a time; None where AWS answers one of ``gone``."""

    def one(i: str) -> T | None:
        try:
            return read(i)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in gone:
                return None
            raise

    if not ids:
        return {}
    with interrupts.Pool(min(READ_WORKERS, len(ids))) as pool:
        return dict(zip(ids, pool.map(one, ids), strict=True))


def snapshot_shares(ec2: Any, sid: str) -> list[str]:
    """Who the snapshot's createVolumePermission names: account ids, or ``all``."""
    perms = ec2.describe_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission")
    return [
        p.get("UserId") or p.get("Group") or "?" for p in perms.get("CreateVolumePermissions", [])
    ]


def plan_regions(plan_inventory: dict[str, Any], actions: list[Any]) -> dict[str, list[str]]:
    """account -> the plan's scanned regions (``LiveReader`` adds every region where the
    account has images)."""
    regions = {str(r) for r in plan_inventory.get("regions", []) or []}
    out: dict[str, set[str]] = {}
    for a in actions:
        out.setdefault(a.account, set(regions)).add(a.region)
    return {account: sorted(rs) for account, rs in out.items()}
