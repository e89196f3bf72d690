"""What Recycle Bin coverage looks like: rules, coverage per resource type, per (account, region).

Semantics follow the AWS Recycle Bin documentation:

- a *tag-level* rule (``ResourceTags``) keeps a deleted resource of its type that has at
  least one of the rule's tag pairs (a pair without a value matches any value of the key);
- a *Region-level* rule (no ``ResourceTags``) keeps every deleted resource of its type in
  the Region except those with one of its exclusion tags (``ExcludeResourceTags``);
- when several rules match, the longest retention wins;
- only ``available`` rules keep anything (an account's first rule is ``pending`` for up
  to 30 minutes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Scope = Literal["region", "tagged", "none", "unknown"]
TagPair = tuple[str, str | None]  # (key, value); value None: any value of the key

EC2_IMAGE = "EC2_IMAGE"
EBS_SNAPSHOT = "EBS_SNAPSHOT"
RESOURCE_TYPES = (EC2_IMAGE, EBS_SNAPSHOT)
NOUNS = {EC2_IMAGE: "images", EBS_SNAPSHOT: "snapshots"}
ALIASES = {
    EC2_IMAGE: EC2_IMAGE,
    "image": EC2_IMAGE,
    "images": EC2_IMAGE,
    "ami": EC2_IMAGE,
    EBS_SNAPSHOT: EBS_SNAPSHOT,
    "snapshot": EBS_SNAPSHOT,
    "snapshots": EBS_SNAPSHOT,
    "snap": EBS_SNAPSHOT,
}
# Retention units the rbin API knows, in days (RetentionPeriodUnit is DAYS only today).
UNIT_DAYS = {"DAYS": 1}


def resource_type(name: str) -> str:
    """``EC2_IMAGE``/``image``/``ami`` -> ``EC2_IMAGE``; ``EBS_SNAPSHOT``/``snapshot`` -> ``EBS_SNAPSHOT``."""
    try:
        return ALIASES[name if name.isupper() else name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown resource type {name!r} (expected EC2_IMAGE or EBS_SNAPSHOT)"
        ) from None


def tag_pairs(tags: list[dict[str, Any]] | None) -> tuple[TagPair, ...]:
    """rbin ``ResourceTag`` dicts -> sorted (key, value|None) pairs."""
    return tuple(
        sorted(
            {(str(t["ResourceTagKey"]), t.get("ResourceTagValue")) for t in tags or []},
            key=lambda p: (p[0], p[1] or ""),
        )
    )


def pair_text(p: TagPair) -> str:
    return f"{p[0]}={p[1]}" if p[1] is not None else f"{p[0]}=*"


def _pair_matches(p: TagPair, tags: Mapping[str, str]) -> bool:
    return p[0] in tags and (p[1] is None or tags[p[0]] == p[1])


def _days(n: int | None) -> str:
    return "?" if n is None else f"{n} day{'s' if n != 1 else ''}"


@dataclass(frozen=True)
class Rule:
    """One retention rule, as GetRule describes it (``detail_error`` when GetRule failed)."""

    id: str
    resource_type: str
    days: int | None
    resource_tags: tuple[TagPair, ...] = ()
    exclude_tags: tuple[TagPair, ...] = ()
    status: str = "available"
    lock_state: str | None = None
    description: str = ""
    arn: str | None = None
    detail_error: str | None = None  # AWS error code of GetRule; scope then unknown

    @property
    def scope(self) -> Literal["region", "tagged", "unknown"]:
        if self.detail_error:
            return "unknown"
        return "tagged" if self.resource_tags else "region"

    @property
    def active(self) -> bool:
        return self.status == "available" and self.detail_error is None and self.days is not None

    def matches(self, tags: Mapping[str, str]) -> bool:
        """Whether this rule would keep a deleted resource with these tags (status aside)."""
        if self.detail_error:
            return False
        if self.resource_tags:
            return any(_pair_matches(p, tags) for p in self.resource_tags)
        return not any(_pair_matches(p, tags) for p in self.exclude_tags)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "resource_type": self.resource_type,
            "retention_days": self.days,
            "scope": self.scope,
            "resource_tags": [pair_text(p) for p in self.resource_tags],
            "exclude_tags": [pair_text(p) for p in self.exclude_tags],
            "status": self.status,
            "lock_state": self.lock_state,
            "description": self.description,
            "arn": self.arn,
            "detail_error": self.detail_error,
        }


@dataclass(frozen=True)
class ResourceCoverage:
    """Whether deleted resources of one type (EC2_IMAGE or EBS_SNAPSHOT) are recoverable.

    ``recoverable``: True when a resource *without tags* would be kept (an available
    Region-level rule); False when no rule or only tag-level rules would keep it; None
    when the rules could not be read (``error_code`` says why). ``days``: the longest
    Region-level retention. ``scope``: ``region`` (a Region-level rule; tag-level rules
    may add to it), ``tagged`` (only tag-level rules, ``tags`` lists their pairs),
    ``none`` or ``unknown``. ``exclude_tags``: pairs that every Region-level rule
    excludes. Use :meth:`covers` for one resource's tags.
    """

    resource_type: str
    recoverable: bool | None
    days: int | None
    scope: Scope
    tags: tuple[TagPair, ...] = ()
    exclude_tags: tuple[TagPair, ...] = ()
    rules: tuple[Rule, ...] = ()
    error_code: str | None = None
    error: str | None = None

    @classmethod
    def from_rules(cls, rtype: str, rules: list[Rule]) -> ResourceCoverage:
        active = [r for r in rules if r.active]
        region = [r for r in active if r.scope == "region"]
        tagged = [r for r in active if r.scope == "tagged"]
        unknown = [r for r in rules if r.scope == "unknown"]
        tags = tuple(sorted({p for r in tagged for p in r.resource_tags}, key=pair_text))
        if region:
            excluded = set(region[0].exclude_tags)
            for r in region[1:]:
                excluded &= set(r.exclude_tags)
            return cls(
                rtype,
                True,
                max(r.days or 0 for r in region),
                "region",
                tags,
                tuple(sorted(excluded, key=pair_text)),
                tuple(rules),
            )
        if unknown:
            code = unknown[0].detail_error
            return cls(
                rtype,
                None,
                None,
                "unknown",
                tags,
                (),
                tuple(rules),
                code,
                f"could not read rule {unknown[0].id} (GetRule: {code})",
            )
        return cls(rtype, False, None, "tagged" if tagged else "none", tags, (), tuple(rules))

    @classmethod
    def failed(cls, rtype: str, code: str, message: str) -> ResourceCoverage:
        return cls(rtype, None, None, "unknown", error_code=code, error=message)

    @property
    def noun(self) -> str:
        return NOUNS.get(self.resource_type, self.resource_type)

    @property
    def pending(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.status == "pending" and not r.detail_error)

    def covers(self, tags: Mapping[str, str] | None = None) -> int | None:
        """Days a deleted resource with these tags would be kept (longest rule), or None."""
        days = [r.days or 0 for r in self.rules if r.active and r.matches(tags or {})]
        return max(days) if days else None

    def recoverable_for(self, tags: Mapping[str, str] | None = None) -> bool | None:
        """True/False for a resource with these tags; None when the rules are unknown
        and none of the readable ones keeps it."""
        if self.covers(tags) is not None:
            return True
        return None if self.scope == "unknown" else False

    def short(self) -> str:
        """A table cell: ``7 days (region-wide)``, ``NO (no rule)``, ``unknown: Code``."""
        if self.scope == "unknown":
            return f"unknown: {self.error_code}"
        if self.scope == "region":
            text = f"{_days(self.days)} (region-wide"
            if self.exclude_tags:
                text += ", except " + " or ".join(pair_text(p) for p in self.exclude_tags)
            return text + ")"
        if self.scope == "tagged":
            longest = max(r.days or 0 for r in self.rules if r.active)
            return f"only tagged {' or '.join(pair_text(p) for p in self.tags)} ({_days(longest)})"
        if self.pending:
            return "NO (rule pending activation)"
        return "NO (no rule)"

    def describe(self) -> str:
        """One line: ``images recoverable for 7 days (region-wide rule)``."""
        n = self.noun
        if self.scope == "unknown":
            return f"{n} recoverability unknown ({self.error or self.error_code})"
        if self.scope == "region":
            text = f"{n} recoverable for {_days(self.days)} (region-wide rule"
            if self.exclude_tags:
                text += ", except those tagged " + " or ".join(
                    pair_text(p) for p in self.exclude_tags
                )
            text += ")"
            longer = [r for r in self.rules if r.active and r.scope == "tagged"]
            best = max(longer, key=lambda r: r.days or 0, default=None)
            if best is not None and (best.days or 0) > (self.days or 0):
                text += f", {_days(best.days)} if tagged " + " or ".join(
                    pair_text(p) for p in best.resource_tags
                )
            return text
        if self.scope == "tagged":
            return f"{n} recoverable only if tagged " + self.short().removeprefix("only tagged ")
        if self.pending:
            return f"{n} NOT recoverable yet (rule {self.pending[0].id} pending activation)"
        return f"{n} NOT recoverable (no rule)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "resource_type": self.resource_type,
            "recoverable": self.recoverable,
            "days": self.days,
            "scope": self.scope,
            "tags": [pair_text(p) for p in self.tags],
            "exclude_tags": [pair_text(p) for p in self.exclude_tags],
            "rules": [r.to_dict() for r in self.rules],
            "error_code": self.error_code,
            "error": self.error,
            "summary": self.describe(),
        }


@dataclass(frozen=True)
class Coverage:
    """Recycle Bin coverage of one (account, region): deregistered images and deleted snapshots."""

    account: str
    region: str
    images: ResourceCoverage
    snapshots: ResourceCoverage
    role_arn: str | None = field(default=None, compare=False)

    def of(self, rtype: str) -> ResourceCoverage:
        return self.images if resource_type(rtype) == EC2_IMAGE else self.snapshots

    @property
    def recoverable(self) -> bool | None:
        """Both untagged images and snapshots recoverable (None: could not tell)."""
        vals = (self.images.recoverable, self.snapshots.recoverable)
        if False in vals:
            return False
        return None if None in vals else True

    def recoverable_for(
        self, resource_type: str, tags: Mapping[str, str] | None = None
    ) -> bool | None:
        """Whether a deleted resource of this type with these tags would be kept."""
        return self.of(resource_type).recoverable_for(tags)

    def retention_for(
        self, resource_type: str, tags: Mapping[str, str] | None = None
    ) -> int | None:
        """The days such a resource would be kept (longest matching rule), or None."""
        return self.of(resource_type).covers(tags)

    def describe(self) -> str:
        """``images recoverable for 7 days (region-wide rule); snapshots NOT recoverable (no rule)``."""
        return f"{self.images.describe()}; {self.snapshots.describe()}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "region": self.region,
            "recoverable": self.recoverable,
            "images": self.images.to_dict(),
            "snapshots": self.snapshots.to_dict(),
            "summary": self.describe(),
        }
