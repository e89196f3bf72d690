"""What ``amictl revoke`` will do, computed before anything changes (and journaled, so a
resumed run carries out exactly this plan): the images, the channel moves, the Allowed AMIs
recomputation and what still runs the revoked images."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from ..aws.session import Connector, Target
from ..channels.gates import Gate, closed_reasons
from ..channels.names import parameter_name
from ..channels.ops import _unusable, list_channels, owned_images, parameter_history
from ..errors import AmictlError
from ..findings.stale import channel_rows
from ..governance import allowed as allowed_mod
from ..model import IN_USE, IN_USE_KINDS, FamilyRule, Image, Inventory, iso, version_key
from ..tagnames import REVOKE_TAGS, revoked_reason
from .tree import derived, roots_of, tree_rows


@dataclass
class RevokePlan:
    revoke_id: str
    ref: str
    reason: str
    caller: str
    at: str
    disable: bool = False
    skip_gates: str | None = None
    tree: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    channels: list[dict[str, Any]] = field(default_factory=list)
    allowed: list[dict[str, Any]] = field(default_factory=list)
    in_use: list[dict[str, Any]] = field(default_factory=list)
    # `revoke --findings SEVERITY`: the channels whose image has such findings (the roots)
    findings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def journal_key(self) -> str:
        return f"revoke-{self.revoke_id}"

    @property
    def image_ids(self) -> set[str]:
        return {i["image_id"] for i in self.images}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RevokePlan:
        return cls(**d)

    def left_channels(self) -> list[dict[str, Any]]:
        return [c for c in self.channels if c["new_image_id"] is None]

    def would_be_noncompliant(self) -> list[dict[str, Any]]:
        return [r for a in self.allowed for r in a["would_be_noncompliant"]]

    def left_noncompliant(self) -> list[str]:
        """One line per thing the recomputed Allowed AMIs criteria leave at odds with the
        revocation: a revoked image left allowed because the account's own instances,
        templates or groups still use it (``kept``), or a running instance on an image the
        new criteria do not allow. revoke says them and asks before acting."""
        out = []
        for a in self.allowed:
            where = f"{a['account']} {a['region']}"
            for k in a["kept"]:
                out.append(
                    f"{where}: revoked {k['image_id']} left allowed: {k['kind']} {k['id']} "
                    "still uses it"
                )
            for r in a["would_be_noncompliant"]:
                out.append(
                    f"{where}: instance {r['instance_id']} runs {r['image_id']}, which the new "
                    "criteria do not allow"
                )
        return out


def _targets(conn: Connector) -> dict[tuple[str, str], Target]:
    return {(t.account, t.region): t for t in conn.targets()}


def _image_row(img: Image, t: Target, parent: str | None, how: str) -> dict[str, Any]:
    return {
        "account": img.account,
        "region": img.region,
        "role_arn": t.role_arn,
        "image_id": img.image_id,
        "name": img.name,
        "family": img.family,
        "version": img.version,
        "state": img.state,
        "deprecation_time": iso(img.deprecation_time),
        "revoke_tags": {k: img.tags[k] for k in REVOKE_TAGS if k in img.tags},
        "parent": parent,
        "how": how,
    }


def _replacement(
    conn: Connector,
    t: Target,
    images: list[Image],
    family: str,
    channel: str,
    revoked: set[str],
    gate: Gate | None,
    skip_gates: str | None,
    now: dt.datetime,
    below: str | None = None,
) -> tuple[Image | None, list[str]]:
    """The newest version of ``family`` in ``t`` older than ``below`` (the revoked version
    the channel held: a channel goes back, a revocation never promotes a newer version) that
    is not revoked, is usable and passes the channel's gate (None, and why each candidate
    failed, when there is none)."""
    why: list[str] = []
    cands = [i for i in images if i.family == family and i.version and i.image_id not in revoked]
    if below:
        cands = [i for i in cands if version_key(i.version or "") < version_key(below)]
    cands.sort(key=lambda i: (version_key(i.version or ""), i.created_at or now), reverse=True)
    for img in cands:
        bad = _unusable(img, now) or revoked_reason(img.tags)
        if bad:
            why.append(f"{img.version} ({img.image_id}) is {bad}")
            continue
        if gate is not None and not skip_gates:
            hist = (
                parameter_history(conn, t, parameter_name(family, gate.requires_channel))
                if gate.requires_channel
                else None
            )
            closed = closed_reasons(gate, img, hist, now)
            if closed:
                why.append(f"{img.version} ({img.image_id}): gate {channel}: {'; '.join(closed)}")
                continue
        return img, why
    return None, why


def _channel_moves(
    conn: Connector,
    targets: dict[tuple[str, str], Target],
    revoked: set[str],
    gates: dict[str, Gate],
    skip_gates: str | None,
    rule: FamilyRule,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    rows = [r for r in list_channels(conn, list(targets.values()), None, rule)]
    out: list[dict[str, Any]] = []
    owned: dict[tuple[str, str], list[Image]] = {}
    for r in rows:
        if r["image_id"] not in revoked:
            continue
        t = targets[(r["account"], r["region"])]
        if (t.account, t.region) not in owned:
            owned[(t.account, t.region)] = owned_images(conn, t, rule)
        img, why = _replacement(
            conn,
            t,
            owned[(t.account, t.region)],
            r["family"],
            r["channel"],
            revoked,
            gates.get(r["channel"]),
            skip_gates,
            now,
            below=r.get("version") or None,
        )
        out.append(
            {
                "account": r["account"],
                "region": r["region"],
                "role_arn": t.role_arn,
                "family": r["family"],
                "channel": r["channel"],
                "parameter": r["parameter"],
                "image_id": r["image_id"],
                "version": r["version"],
                "new_image_id": img.image_id if img else None,
                "new_version": img.version if img else None,
                "status": "to move"
                if img
                else "left: no version that is not revoked "
                "and passes its gates" + (f" ({'; '.join(why)})" if why else ""),
            }
        )
    return out


def _from_channels(
    current: list[dict[str, Any]],
    chan: list[dict[str, Any]],
    images: dict[str, dict[str, Any]],
) -> list[str] | None:
    """The ``--also`` providers when ``current`` is what `allowed-images set
    --from-channels` makes of ``chan`` (None: the criteria were not made from channels);
    a ScanResultCondition on every criterion (``--scan-max-*``) is looked through."""
    current = [{k: v for k, v in c.items() if k != "ScanResultCondition"} for c in current]
    also = [p for c in current if set(c) == {"ImageProviders"} for p in c["ImageProviders"]]
    try:
        built, _ = allowed_mod.criteria_from_channels(chan, images, also)
    except AmictlError:
        return None
    same = sorted(json.dumps(c, sort_keys=True) for c in built) == sorted(
        json.dumps(c, sort_keys=True) for c in current
    )
    return also if same and current else None


# What launches from an image in the account it is found in: every in-use kind but the
# channels (revoke moves them), the producer's view of other accounts' use (an image usage
# report: that account's own launchers are read in its own inventory) and infrastructure
# code (it names an image, not the account it is deployed to).
LAUNCHING_HERE = IN_USE - {"channel", "consumer-account", "iac"}


def _allowed(
    conn: Connector,
    targets: dict[tuple[str, str], Target],
    plan: RevokePlan,
    inv: Inventory,
) -> list[dict[str, Any]]:
    """Per account/region whose Allowed AMIs criteria come from the channels: the criteria
    after the revocation. Families with a revoked image are allowed by the exact names of
    their (new) channel images instead of a watermark or pattern that would still match the
    revoked ones; a revoked image the account's own launchers still use (instances, templates,
    groups, Spot requests and fleets, EMR, Batch, Beanstalk, CloudFormation, Image Builder,
    SSM parameters) stays allowed by its exact name and is reported (``kept``)."""
    revoked = plan.image_ids
    moved = {(c["account"], c["region"], c["parameter"]): c for c in plan.channels}
    fams = {i["family"] for i in plan.images if i["family"]}
    chan_all = list_channels(conn, list(targets.values()))
    at = dt.datetime.now(dt.UTC)
    out: list[dict[str, Any]] = []
    for t in targets.values():
        s = allowed_mod.read_settings(conn, t)
        if not s["criteria"]:
            continue
        chan = allowed_mod.channels_for(chan_all, t)
        ids = sorted(
            {r["image_id"] for r in chan}
            | {
                c["new_image_id"]
                for c in plan.channels
                if c["new_image_id"] and c["region"] == t.region
            }
        )
        images = allowed_mod.images_by_id(conn.client("ec2", t.region, t.role_arn), t.region, ids)
        also = _from_channels(s["criteria"], chan, images)
        if also is None:
            continue
        after = []
        for r in chan:
            c = moved.get((r["account"], r["region"], r["parameter"]))
            if c is not None and c["new_image_id"]:
                r = {**r, "image_id": c["new_image_id"]}
            after.append(r)
        plain = [r for r in after if r["family"] not in fams and r["image_id"] not in revoked]
        criteria, _why = allowed_mod.criteria_from_channels(plain, images, also)
        exact: dict[str, set[str]] = defaultdict(set)
        for r in after:
            img = images.get(r["image_id"])
            if r["family"] in fams and img is not None and r["image_id"] not in revoked:
                exact[str(img.get("OwnerId"))].add(str(img.get("Name")))
        kept = []
        for ref in inv.references:
            if (
                ref.image_id in revoked
                and ref.kind in LAUNCHING_HERE
                and (ref.account, ref.region) == (t.account, t.region)
            ):
                used = inv.by_id.get(ref.image_id)
                if used is not None and used.owner_id != t.account:
                    exact[used.owner_id].add(used.name)
                    kept.append({**ref.to_dict(), "why": "still used here: left allowed"})
        for owner, names in sorted(exact.items()):
            criteria.insert(0, {"ImageProviders": [owner], "ImageNames": sorted(names)})
        scan = next(
            (c["ScanResultCondition"] for c in s["criteria"] if "ScanResultCondition" in c), None
        )
        if scan:  # set with --scan-max-*: kept on every criterion
            criteria = [{**c, "ScanResultCondition": scan} for c in criteria]
        insts = allowed_mod.live_instances(conn, t)
        out.append(
            {
                "account": t.account,
                "region": t.region,
                "role_arn": t.role_arn,
                "old_criteria": s["criteria"],
                "new_criteria": criteria,
                "diff": allowed_mod.diff(s["criteria"], criteria),
                "kept": kept,
                "would_be_noncompliant": allowed_mod.noncompliant(t, insts, criteria, at),
            }
        )
    return out


def _in_use(inv: Inventory, plan: RevokePlan) -> list[dict[str, Any]]:
    """Everything that can still launch a revoked image (every kind of IN_USE_KINDS but the
    channels, which revoke moves), with the rollout that would move it off."""
    revoked = plan.image_ids
    fam_of = {i["image_id"]: i["family"] for i in plan.images}
    chan_of: dict[tuple[str, str, str], str] = {}
    for c in sorted(plan.channels, key=lambda c: c["new_image_id"] is None):
        chan_of.setdefault((c["account"], c["region"], c["family"]), c["channel"])
    out = []
    for ref in inv.references:
        if ref.image_id not in revoked or ref.kind not in IN_USE_KINDS or ref.kind == "channel":
            continue
        fam = fam_of.get(ref.image_id) or "FAMILY"
        chan = chan_of.get((ref.account, ref.region, fam), "CHANNEL")
        cmd = f"amictl rollout {fam} --channel {chan} --region {ref.region}"
        if ref.kind == "auto-scaling-group":
            cmd += f" --asg {ref.id}"
        out.append({**ref.to_dict(), "family": fam, "rollout": cmd})
    out.sort(key=lambda r: (r["account"], r["region"], r["kind"], r["id"]))
    return out


def make_plan(
    conn: Connector,
    inv: Inventory,
    ref: str,
    reason: str,
    *,
    disable: bool = False,
    gates: dict[str, Gate] | None = None,
    skip_gates: str | None = None,
    rule: FamilyRule | None = None,
    caller: str | None = None,
    now: dt.datetime | None = None,
    findings: str | None = None,
) -> RevokePlan:
    """Everything the revocation of ``ref`` (FAMILY@VERSION or an AMI id) will do; with
    ``findings`` (a severity) the roots are instead every channel image with findings of at
    least that severity (``findings.stale.channel_rows``, the rule of `stale --findings`;
    an image never scanned or already revoked is not; none found: a plan with no image)."""
    rule = rule or FamilyRule()
    now = now or dt.datetime.now(dt.UTC)
    inv.resolve_families(rule)
    bad: list[dict[str, Any]] = []
    if findings:
        done = {i.image_id for i in inv.images if revoked_reason(i.tags)}  # revoked before
        bad = [
            r
            for r in channel_rows(inv, findings, None, now)
            if r["kind"] == "findings" and r["image_id"] not in done
        ]
        root_ids = {r["image_id"] for r in bad}  # none: an empty plan, said by the caller
    else:
        root_ids = {r.image_id for r in roots_of(inv, ref)}
        if not root_ids:
            raise AmictlError(
                f"{ref}: no such image in the accounts and regions read",
                hint=f"`amictl versions {ref.partition('@')[0]}` lists the versions; check --region"
                if "@" in ref
                else "check the image id and --region",
            )
    targets = _targets(conn)
    found = derived(conn, inv, root_ids, targets)
    plan = RevokePlan(
        revoke_id=uuid.uuid4().hex[:12],
        ref=ref,
        reason=reason,
        caller=caller or conn.identity()["arn"],
        at=iso(now) or "",
        disable=disable,
        skip_gates=skip_gates,
        tree=tree_rows(inv, found),
        findings=bad,
    )
    if not found:
        return plan
    owned = {i.image_id: i for i in inv.images if i.owned}  # not a consumer's view of it
    for iid, (parent, how) in found.items():
        img = owned.get(iid)
        if img is None:
            continue  # another account's image: amictl cannot tag it
        t = targets.get((img.account, img.region)) or Target(img.account, img.region)
        plan.images.append(_image_row(img, t, parent, how))
    plan.images.sort(key=lambda i: (i["account"], i["region"], i["image_id"]))
    plan.channels = _channel_moves(conn, targets, set(found), gates or {}, skip_gates, rule, now)
    plan.allowed = _allowed(conn, targets, plan, inv)
    plan.in_use = _in_use(inv, plan)
    return plan
