"""Launch permissions: share an image with accounts, organizations, OUs or everyone."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..aws.session import Connector, Target, aws_error
from ..errors import AmictlError, InputError, SafetyError
from ..state.store import Store
from .common import Found, find_image

ACCOUNT_RE = re.compile(r"^\d{12}$")
ORG_RE = re.compile(r"^arn:aws[a-z-]*:organizations::\d{12}:organization/o-[a-z0-9]{10,32}$")
OU_RE = re.compile(
    r"^arn:aws[a-z-]*:organizations::\d{12}:ou/o-[a-z0-9]{10,32}/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$"
)
BLOCKED = "block-new-sharing"

PERMISSIONS = {
    "sts:GetCallerIdentity",
    "ec2:DescribeImages",
    "ec2:ModifyImageAttribute",
    "ec2:ModifySnapshotAttribute",
    "ec2:GetImageBlockPublicAccessState",
}


@dataclass
class Grantees:
    accounts: list[str] = field(default_factory=list)
    orgs: list[str] = field(default_factory=list)
    ous: list[str] = field(default_factory=list)
    public: bool = False

    def permissions(self) -> list[dict[str, str]]:
        out: list[dict[str, str]] = [{"UserId": a} for a in self.accounts]
        out += [{"OrganizationArn": o} for o in self.orgs]
        out += [{"OrganizationalUnitArn": o} for o in self.ous]
        if self.public:
            out.append({"Group": "all"})
        return out

    def describe(self) -> list[str]:
        return [*self.accounts, *self.orgs, *self.ous, *(["public"] if self.public else [])]


def grantees(accounts: list[str], orgs: list[str], ous: list[str], public: bool) -> Grantees:
    """Validated grantees (InputError, exit 2, names the bad value)."""
    g = Grantees(public=public)
    for a in accounts:
        for part in a.split(","):
            part = part.strip()
            if not ACCOUNT_RE.match(part):
                raise InputError(f"{part!r} is not a 12-digit AWS account id", key="--account")
            g.accounts.append(part)
    for o in orgs:
        if not ORG_RE.match(o.strip()):
            raise InputError(
                f"{o!r} is not an organization ARN "
                "(arn:aws:organizations::MANAGEMENT-ACCOUNT:organization/o-…)",
                key="--org",
            )
        g.orgs.append(o.strip())
    for o in ous:
        if not OU_RE.match(o.strip()):
            raise InputError(
                f"{o!r} is not an OU ARN (arn:aws:organizations::ACCOUNT:ou/o-…/ou-…)",
                key="--ou",
            )
        g.ous.append(o.strip())
    g.accounts = list(dict.fromkeys(g.accounts))
    if not (g.accounts or g.orgs or g.ous or g.public):
        raise InputError("say whom to share with: --account ID, --org ARN, --ou ARN or --public")
    return g


def block_public_access_state(conn: Connector, target: Target) -> str:
    ec2 = conn.client("ec2", target.region, target.role_arn)
    try:
        return str(ec2.get_image_block_public_access_state()["ImageBlockPublicAccessState"])
    except Exception as exc:  # noqa: BLE001
        raise aws_error(exc, "GetImageBlockPublicAccessState", target.region) from None


def _blocked(target: Target) -> SafetyError:
    return SafetyError(
        f"Image Block Public Access is on in {target.account}/{target.region}: "
        "no image can be made public there",
        hint=f"if it really must be public: `aws ec2 disable-image-block-public-access "
        f"--region {target.region}`, run this again, then turn it back on with "
        f"`aws ec2 enable-image-block-public-access --image-block-public-access-state "
        f"{BLOCKED} --region {target.region}`",
    )


def _modify(conn: Connector, src: Found, g: Grantees, op: str) -> None:
    ec2 = conn.client("ec2", src.region, src.target.role_arn)
    try:
        ec2.modify_image_attribute(ImageId=src.image_id, LaunchPermission={op: g.permissions()})
    except Exception as exc:  # noqa: BLE001
        err = aws_error(exc, "ModifyImageAttribute", src.region)
        if err.code == "OperationNotPermitted" and g.public:
            raise _blocked(src.target) from None
        raise err from None


def _snapshot_permissions(conn: Connector, src: Found, accounts: list[str], op: str) -> list[str]:
    """createVolumePermission on the image's snapshots for ``accounts``.

    Launching a shared AMI needs only its launch permission, but an account that wants
    to CopyImage it must be able to read its snapshots ("You do not have permission to
    access the storage of this ami"; EC2 User Guide, CopyingAMIs.html#copy-ami-across-accounts).
    """
    ec2 = conn.client("ec2", src.region, src.target.role_arn)
    done = []
    for sid in src.snapshot_ids:
        try:
            ec2.modify_snapshot_attribute(
                SnapshotId=sid,
                Attribute="createVolumePermission",
                OperationType=op.lower(),
                UserIds=accounts,
            )
        except Exception as exc:  # noqa: BLE001
            err = aws_error(exc, "ModifySnapshotAttribute", src.region)
            if op == "Remove" and err.code == "InvalidSnapshot.NotFound":
                continue
            raise err from None
        done.append(sid)
    return done


def change_sharing(
    conn: Connector,
    targets: list[Target],
    image_id: str,
    g: Grantees,
    *,
    add: bool,
    allow_copy: bool = False,
    store: Store | None = None,
    caller: str | None = None,
) -> dict[str, Any]:
    """Add (share) or remove (unshare) launch permissions; a public share is journaled."""
    src = find_image(conn, targets, image_id)
    if src.data.get("OwnerId") not in (None, src.target.account):
        raise AmictlError(
            f"{src.image_id} is owned by {src.data.get('OwnerId')}, not {src.target.account}: "
            "only the owner can change who may launch it"
        )
    if add and src.data.get("State") == "disabled":
        raise SafetyError(
            f"{src.image_id} is disabled: a disabled image cannot be shared",
            hint=f"enable it first (`aws ec2 enable-image --image-id {src.image_id}`)",
        )
    if add and g.public and block_public_access_state(conn, src.target) == BLOCKED:
        raise _blocked(src.target)
    op = "Add" if add else "Remove"
    run_id = f"share-{uuid.uuid4()}"
    journaled = g.public and store is not None

    def journal(status: str, **extra: Any) -> None:
        if journaled:
            assert store is not None
            store.journal_write(
                plan_checksum=run_id,
                action_id="public",
                type="make-public" if add else "make-private",
                account=src.target.account,
                region=src.region,
                resource=src.image_id,
                status=status,
                caller=caller,
                **extra,
            )

    journal("intended")
    try:
        _modify(conn, src, g, op)
    except AmictlError as exc:
        journal(
            "failed",
            error_code=getattr(exc, "code", None) or type(exc).__name__,
            message=exc.message,
        )
        raise
    journal("done")
    snaps: list[str] = []
    if g.accounts and (allow_copy or not add):
        snaps = _snapshot_permissions(conn, src, g.accounts, op)
    return {
        "image_id": src.image_id,
        "account": src.target.account,
        "region": src.region,
        "action": "share" if add else "unshare",
        "accounts": g.accounts,
        "organizations": g.orgs,
        "organizational_units": g.ous,
        "public": g.public,
        "snapshots": snaps,
        "journal": run_id if journaled else None,
    }
