"""The blast-radius refusals (exit 3), counted on the images live now: a plan that would
deregister every available image of a family, or more than ``--max-share`` of an
account/region's images, looks like a policy bug."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws.session import Connector, Target, aws_error
from ..errors import SafetyError
from ..inventory.collectors import image_from_api
from ..model import FamilyRule
from ..policy.model import Policy
from ..policy.plan_model import Plan
from ..state.store import UNSETTLED, Store
from .options import ApplyOptions

SHARE_MIN_IMAGES = 20


def blast_radius(
    plan: Plan,
    policy: Policy,
    live: dict[tuple[str, str], list[dict[str, Any]]],
    opts: ApplyOptions,
    done: frozenset[str] = frozenset(),
) -> None:
    """Refuse plans that look like policy bugs, counted on the LIVE images (exit 3):
    deregistering every available image of a family in an account/region, or more than
    ``max_share`` of the images of an account/region that has at least 20. ``done``: the
    actions an earlier run of this plan did (a resumed plan counts what it deregistered)."""
    dereg: dict[tuple[str, str], set[str]] = defaultdict(set)
    earlier: dict[tuple[str, str], set[str]] = defaultdict(set)
    for a in plan.actions:
        if a.type == "deregister" and a.image_id:
            dereg[(a.account, a.region)].add(a.image_id)
            if a.id in done:
                earlier[(a.account, a.region)].add(a.image_id)
    for key, ids in sorted(dereg.items()):
        images = live.get(key, [])
        live_ids = {i["ImageId"] for i in images}
        gone = earlier[key] - live_ids
        hit = (live_ids & ids) | gone
        where = f"{key[0]}/{key[1]}"
        if not opts.allow_whole_family:
            # Families by the plan's rule AND by the default one: a plan edited to a family
            # rule that matches nothing cannot hide a whole family.
            families: dict[str, list[str]] = defaultdict(list)
            for raw in images:
                if raw.get("State") != "available":
                    continue
                img = image_from_api(raw, key[0], key[1])
                for rule in (policy.families, FamilyRule()):
                    fam, _ = rule.resolve(img)
                    if fam and raw["ImageId"] not in families[fam]:
                        families[fam].append(raw["ImageId"])
            whole = sorted(f for f, members in families.items() if set(members) <= hit)
            if whole:
                raise SafetyError(
                    f"blast radius: the plan deregisters every available image of famil"
                    f"{'ies' if len(whole) > 1 else 'y'} {', '.join(whole[:5])} in {where}",
                    hint="if that is really meant, pass --allow-whole-family",
                )
        n = len(images) + len(gone)
        if n >= SHARE_MIN_IMAGES and len(hit) / n > opts.max_share:
            need = -(-100 * len(hit) // n)
            raise SafetyError(
                f"blast radius: the plan deregisters {len(hit)} of the {n} images in {where} "
                f"({len(hit) / n:.0%}, limit {opts.max_share:.0%})",
                hint=f"review the plan, then pass --max-share {need}",
            )


def _live_images(connector: Connector, target: Target) -> list[dict[str, Any]]:
    ec2 = connector.client("ec2", target.region, target.role_arn)
    out: list[dict[str, Any]] = []
    for page in ec2.get_paginator("describe_images").paginate(
        Owners=["self"], IncludeDeprecated=True, IncludeDisabled=True, MaxResults=1000
    ):
        out.extend(page.get("Images", []))
    return out


def live_blast_radius(
    connector: Connector,
    plan: Plan,
    policy: Policy,
    targets: dict[tuple[str, str], Target],
    opts: ApplyOptions,
    store: Store | None,
) -> None:
    """The blast-radius refusals on the images live now (run again under the lock)."""
    deregistering = sorted({(a.account, a.region) for a in plan.actions if a.type == "deregister"})
    try:
        live = {key: _live_images(connector, targets[key]) for key in deregistering}
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, "DescribeImages (blast-radius check)") from None
    done: frozenset[str] = frozenset()
    if store is not None and deregistering:
        states = store.journal_final_states(plan.checksum)
        done = frozenset(k for k, v in states.items() if v == "done" or v in UNSETTLED)
    blast_radius(plan, policy, live, opts, done)
