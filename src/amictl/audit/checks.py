"""The audit's checks (registered in :data:`amictl.audit.registry.CHECKS`)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import conventions as conv_mod
from ..model import Image
from ..yamlpos import Positions
from .registry import AuditContext, Check, Finding, check

IMAGES = ("ec2:DescribeImages", "ec2:DescribeImageAttribute")
ORG_ID_RE = re.compile(r"\b(o-[a-z0-9]{10,32})\b")
DEFAULT_CONVENTIONS = {"required_tags": {"family": None, "version": None}}
"""Without a conventions file, the tags amictl's versions and channels rely on."""


def default_conventions() -> conv_mod.Conventions:
    return conv_mod.parse(DEFAULT_CONVENTIONS, Positions("<default: family and version tags>"))


def _images(ctx: AuditContext, available_only: bool = False) -> list[Image]:
    imgs = [i for i in ctx.inv.images if i.owned]
    if available_only:
        imgs = [i for i in imgs if i.state == "available"]
    return sorted(imgs, key=lambda i: (i.account, i.region, i.name, i.image_id))


def _days(td_seconds: float) -> int:
    return int(td_seconds // 86400)


@check(
    "public-image",
    "critical",
    "Image is public",
    "amictl unshare {resource} --public --region {region}",
    IMAGES,
    "Every AWS account can launch the image (launch permission Group=all).",
)
def public_image(ctx: AuditContext, c: Check) -> Iterator[Finding]:
    for img in _images(ctx):
        if img.public:
            yield c.finding(
                img.account, img.region, img.image_id, "launch permission: all", img.name
            )


def trusted(target: str, allowed: set[str], own_accounts: set[str]) -> bool:
    """Whether a launch-permission target is one of ours or in the trusted list."""
    if target in own_accounts or target in allowed:
        return True
    if target.startswith("arn:"):
        if target.split(":")[4:5] and target.split(":")[4] in own_accounts:
            return True  # an organization (or OU) whose management account is audited: ours
        m = ORG_ID_RE.search(target)  # an OU of a trusted organization is trusted
        # the same organization id exactly (o-abcdefghij is not o-abcdefghijkl)
        orgs = {a for a in allowed if a.startswith("o-")} | {
            a.split(":organization/", 1)[1] for a in allowed if ":organization/" in a
        }
        return m is not None and m.group(1) in orgs
    return False


@check(
    "untrusted-share",
    "high",
    "Image shared outside the trusted accounts and organizations",
    "amictl unshare {resource} {grantee_option} --region {region} "
    "(or add it with `amictl audit --trust ...`)",
    IMAGES,
    "A launch permission names an account, organization or OU that is neither one of the "
    "audited accounts (or an organization they manage) nor given with --trust.",
)
def untrusted_share(ctx: AuditContext, c: Check) -> Iterator[Finding]:
    allowed = set(ctx.options.trusted)
    own = set(ctx.inv.accounts)
    for img in _images(ctx):
        for target in img.shared_with:
            if trusted(target, allowed, own):
                continue
            if not target.startswith("arn:"):
                option = f"--account {target}"
            elif ":ou/" in target:
                option = f"--ou {target}"
            else:
                option = f"--org {target}"
            yield c.finding(
                img.account,
                img.region,
                img.image_id,
                f"launch permission: {target}",
                img.name,
                grantee_option=option,
            )


@check(
    "unencrypted-snapshot",
    "medium",
    "Snapshot is not encrypted",
    "make an encrypted copy (aws ec2 copy-image --source-image-id {image} --source-region "
    "{region} --region {region} --name NEW-NAME --encrypted), move users to it, retire this "
    "one; turn on EBS encryption by default for the next builds",
    ("ec2:DescribeSnapshots", *IMAGES),
    "An owned EBS snapshot (of an image, or orphaned) is stored unencrypted.",
)
def unencrypted_snapshot(ctx: AuditContext, c: Check) -> Iterator[Finding]:
    inv = ctx.inv
    for s in sorted(inv.snapshots, key=lambda s: (s.account, s.region, s.snapshot_id)):
        if s.encrypted:
            continue
        users = sorted(i.image_id for i in inv.images_by_snapshot.get(s.snapshot_id, []))
        detail = f"used by {', '.join(users)}" if users else "no registered image uses it"
        yield c.finding(
            s.account,
            s.region,
            s.snapshot_id,
            f"{s.size_gib} GiB, {detail}",
            image=users[0] if users else "AMI",
        )


@check(
    "missing-required-tags",
    "low",
    "Image lacks required tags",
    "amictl lint --fix (family/version from the name), or tag it: "
    "aws ec2 create-tags --resources {resource} --tags Key=...,Value=...",
    IMAGES,
    "A tag the conventions file requires (default: family and version) is missing or does "
    "not match its pattern (the required-tag rule of `amictl lint`).",
)
def missing_required_tags(ctx: AuditContext, c: Check) -> Iterator[Finding]:
    conv = ctx.options.conventions or default_conventions()
    for img in _images(ctx):
        problems = [v.detail for v in conv_mod.check_image(img, conv) if v.rule == "required-tag"]
        if problems:
            yield c.finding(img.account, img.region, img.image_id, "; ".join(problems), img.name)


@check(
    "stale-channel-image",
    "medium",
    "Image in a release channel is older than the maximum age",
    "build a new version and promote it: amictl promote {family} VERSION --channel {channel}",
    (*IMAGES, "ssm:DescribeParameters", "ssm:GetParameters"),
    "A channel (SSM /amictl/channels/...) points at an image created longer ago than "
    "--max-channel-age (default 180d).",
)
def stale_channel_image(ctx: AuditContext, c: Check) -> Iterator[Finding]:
    limit = ctx.options.max_channel_age
    for img in _images(ctx):
        if img.created_at is None or ctx.now - img.created_at <= limit:
            continue
        age = _days((ctx.now - img.created_at).total_seconds())
        for r in ctx.inv.refs(img.image_id):
            if r.kind == "channel":
                yield c.finding(
                    img.account,
                    img.region,
                    img.image_id,
                    f"channel {r.id}: image is {age} days old (max {limit.days})",
                    img.name,
                    family=img.family or "FAMILY",
                    channel=r.id.rstrip("/").rsplit("/", 1)[-1],
                )


@check(
    "deprecated-still-launched",
    "medium",
    "Deprecated or disabled image was launched recently",
    "amictl refs {resource} shows what launches it; move those to a current version",
    IMAGES,
    "The image is deprecated or disabled, yet its LastLaunchedTime is within --recent "
    "(default 30d).",
)
def deprecated_still_launched(ctx: AuditContext, c: Check) -> Iterator[Finding]:
    for img in _images(ctx):
        retired = img.state == "disabled" or img.deprecated_at(ctx.now)
        last = img.last_launched_time
        if not retired or last is None or ctx.now - last > ctx.options.recent:
            continue
        what = "disabled" if img.state == "disabled" else "deprecated"
        days = _days((ctx.now - last).total_seconds())
        yield c.finding(
            img.account,
            img.region,
            img.image_id,
            f"{what}, last launched {days} days ago",
            img.name,
        )


@check(
    "imdsv1-allowed",
    "medium",
    "Instances launched from the image allow IMDSv1",
    "aws ec2 modify-image-attribute --image-id {resource} --imds-support v2.0 --region {region} "
    "(one way), or build the next version with ImdsSupport v2.0",
    IMAGES,
    "The image's ImdsSupport is not v2.0, so its instances accept IMDSv1 unless their "
    "launch settings require tokens.",
)
def imdsv1_allowed(ctx: AuditContext, c: Check) -> Iterator[Finding]:
    for img in _images(ctx, available_only=True):
        if img.imds_support != "v2.0":
            yield c.finding(
                img.account,
                img.region,
                img.image_id,
                f"ImdsSupport: {img.imds_support or 'not set'}",
                img.name,
            )


@check(
    "no-recycle-bin-rule",
    "medium",
    "No Recycle Bin rule keeps deregistered images or deleted snapshots",
    "amictl recycle-bin ensure --retention 7d --region {region}",
    ("rbin:ListRules", "rbin:GetRule"),
    "A deregistered image or deleted snapshot without tags would be gone at once: no "
    "region-wide Recycle Bin retention rule covers it.",
)
def no_recycle_bin_rule(ctx: AuditContext, c: Check) -> Iterator[Finding]:
    for rs in ctx.regions:
        cov = rs.recycle_bin
        if cov is None:
            continue
        missing = [r for r in (cov.images, cov.snapshots) if r.recoverable is False]
        if missing:
            yield c.finding(
                rs.account,
                rs.region,
                f"{rs.account}/{rs.region}",
                "; ".join(r.describe() for r in missing),
            )


@check(
    "image-block-public-access-off",
    "high",
    "Image Block Public Access is off",
    "aws ec2 enable-image-block-public-access --image-block-public-access-state "
    "block-new-sharing --region {region}",
    ("ec2:GetImageBlockPublicAccessState",),
    "Any image of the account in this region can be made public.",
)
def block_public_access_off(ctx: AuditContext, c: Check) -> Iterator[Finding]:
    for rs in ctx.regions:
        if rs.block_public_access == "unblocked":
            yield c.finding(
                rs.account,
                rs.region,
                f"{rs.account}/{rs.region}",
                "ImageBlockPublicAccessState: unblocked",
            )
