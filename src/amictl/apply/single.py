"""One image, one stage: ``amictl deprecate|disable|retire AMI`` as one-action plans.

A single-image command is not a shortcut around the safety of a plan: it makes a plan
with a policy of one rule that selects exactly that image (``select.images``), with
every keep condition at its default (in use, shared, channels and their history,
ancestors, holds), planned on a fresh scan of the image's region, and applies it
through the same executor — the live decision, the journal, the lock and the
refusals. The marks it writes name the policy ``amictl-cli``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from ..aws.session import Connector, Target
from ..errors import InputError, SafetyError
from ..inventory.scan import scan
from ..keep.decide import STAGES
from ..model import FamilyRule
from ..policy.model import Keep, Policy, Retire, Rule, Select
from ..policy.plan_model import Plan
from ..policy.planner import plan as make_plan
from .live import LiveReader

MANUAL_POLICY = "amictl-cli"


def single_policy(image_id: str, stage: str, snapshots: str = "keep") -> Policy:
    if stage not in STAGES:
        raise InputError(f"unknown stage {stage!r}", key="stage")
    if snapshots not in ("keep", "delete", "archive"):
        raise InputError(f"expected keep, delete or archive, got {snapshots!r}", key="--snapshots")
    zero = dt.timedelta(0)
    retire = Retire(
        deprecate=zero if stage == "deprecate" else None,
        disable=zero if stage == "disable" else None,
        deregister=zero if stage == "deregister" else None,
        snapshots=snapshots,
    )
    # Deprecating is reversible and routine (issue 31): the base of kept images may be
    # deprecated; disabling or deregistering it stays refused.
    keep = Keep(ancestors=stage != "deprecate")
    rule = Rule(
        name=f"{stage}-{image_id}", select=Select(images=(image_id,)), keep=keep, retire=retire
    )
    return Policy(name=MANUAL_POLICY, rules=(rule,), path=f"<amictl {stage} {image_id}>")


def single_plan(
    connector: Connector,
    target: Target,
    image_id: str,
    stage: str,
    snapshots: str = "keep",
    now: dt.datetime | None = None,
) -> Plan:
    """The one-image plan; SafetyError (exit 3) naming every reason when the image is kept.
    The scan covers the target's region and the connector's other regions of its account;
    copies and children in every other enabled region of the account are found as apply
    finds them (``LiveReader.add_copies``): they keep their source."""
    if not image_id.startswith("ami-"):
        raise InputError(f"{image_id!r} is not an image id (ami-…)", key="AMI")
    now = now or dt.datetime.now(dt.UTC)
    targets = [t for t in connector.targets() if t.account == target.account] or [target]
    inv = scan(connector, targets)
    if image_id in inv.by_id:
        # copies and children in the account's other regions, as apply finds them
        reader = LiveReader(connector, FamilyRule(), {}, every_region=True)
        reader.add_copies(target, inv, {image_id})
        inv.facts_changed()
    if image_id not in inv.by_id or inv.by_id[image_id].region != target.region:
        owned = inv.by_id.get(image_id)
        where = f" (it is in {owned.region})" if owned else ""
        raise InputError(
            f"{image_id} is not an image this account owns in {target.region}{where}",
            key="AMI",
            hint="give the image's region with --region",
        )
    p = make_plan(inv, single_policy(image_id, stage, snapshots), now)
    decision = next((d for d in p.decisions if d.image_id == image_id), None)
    if decision is not None and decision.verdict == "keep":
        raise SafetyError(
            f"refusing to {stage} {image_id}: " + "; ".join(decision.reasons[:5]),
            hint=way_out(image_id, stage, decision.reasons),
        )
    if not p.inventory.get("complete", False):
        raise SafetyError(
            f"refusing to {stage} {image_id}: the scan of {target.account}/{target.region} is "
            "incomplete (" + "; ".join(str(x) for x in p.inventory.get("incomplete", [])) + ")",
            hint="fix access to the kinds named, then try again",
        )
    return p


_CHANNEL_RE = re.compile(r"channel (\S+) of family (\S+)")

# What ends each reason to keep an image: (the reason's start, the way out).
_WAYS = (
    (
        "ancestor of kept image",
        "`amictl deprecate {id}` is allowed (reversible); to {stage} it, "
        "retire the images built from it first",
    ),
    ("in use", "move what launches it to another image (`amictl refs {id}` lists them)"),
    ("launched ", "wait until it has not been launched for the rule's launched_within"),
    ("shared", "`amictl unshare {id} --account ...` ends the sharing (`amictl sharing`)"),
    ("channel history", "promote newer versions until no channel's history names it"),
    (
        "channel",
        "promote another version to the channel first (`amictl promote {family} "
        "VERSION --channel {channel}`)",
    ),
    ("held: tag", "`amictl tag {id} KEY=VALUE --release-hold` ends a tag hold"),
    (
        "held: deregistration protection",
        "turn off deregistration protection first (EC2 DisableImageDeregistrationProtection)",
    ),
    ("still pending", "wait until the image is available"),
    ("not retired: ", "fix access to what could not be read, then try again"),
)


def way_out(image_id: str, stage: str, reasons: Sequence[str]) -> str:
    """The ways out of a refusal, one per kind of reason (README: every refusal names
    one): what to do, since ``deprecate``/``disable``/``retire`` take no override."""
    ways: list[str] = []
    for reason in reasons:
        for start, way in _WAYS:
            if reason.startswith(start):
                m = _CHANNEL_RE.search(reason)
                family, channel = (m.group(2), m.group(1)) if m else ("FAMILY", "C")
                text = way.format(id=image_id, stage=stage, family=family, channel=channel)
                if text not in ways and not (start.startswith("ancestor") and stage == "deprecate"):
                    ways.append(text)
                break
    ways.append("`amictl explain` shows every reason")
    return "; ".join(ways)
