"""A plan is data: frozen actions, decisions, a canonical JSON form and its checksum."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError

ACTION_TYPES = (
    "mark",
    "unmark",
    "deprecate",
    "undeprecate",
    "disable",
    "enable",
    "deregister",
    "delete-snapshot",
    "archive-snapshot",
)
DESTRUCTIVE = {"deprecate", "disable", "deregister", "delete-snapshot", "archive-snapshot"}
FORMAT = 1


@dataclass(frozen=True, slots=True)
class Action:
    id: str
    type: str
    account: str
    region: str
    rule: str
    reasons: tuple[str, ...]
    image_id: str | None = None
    snapshot_id: str | None = None
    after: tuple[str, ...] = ()
    size_gib: int = 0
    unsafe: bool = False
    family: str | None = None
    # What the planner saw, so apply can tell when the image changed since (state, in_use, shared, protected).
    expect: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "account": self.account,
            "region": self.region,
        }
        if self.image_id:
            d["image_id"] = self.image_id
        if self.snapshot_id:
            d["snapshot_id"] = self.snapshot_id
        d["rule"] = self.rule
        if self.after:
            d["after"] = list(self.after)
        d["reasons"] = list(self.reasons)
        if self.size_gib:
            d["size_gib"] = self.size_gib
        if self.unsafe:
            d["unsafe"] = True
        if self.family:
            d["family"] = self.family
        if self.expect:
            d["expect"] = dict(self.expect)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Action:
        if d.get("type") not in ACTION_TYPES:
            raise InputError(
                f"unknown action type {d.get('type')!r}", key=f"actions[{d.get('id')}]"
            )
        return cls(
            id=d["id"],
            type=d["type"],
            account=d["account"],
            region=d["region"],
            rule=d.get("rule", ""),
            reasons=tuple(d.get("reasons", ())),
            image_id=d.get("image_id"),
            snapshot_id=d.get("snapshot_id"),
            after=tuple(d.get("after", ())),
            size_gib=int(d.get("size_gib", 0)),
            unsafe=bool(d.get("unsafe", False)),
            family=d.get("family"),
            expect=tuple(sorted((d.get("expect") or {}).items())),
        )


@dataclass(frozen=True, slots=True)
class Decision:
    image_id: str
    region: str
    account: str
    verdict: str
    rule: str | None
    reasons: tuple[str, ...]
    family: str | None = None
    version: str | None = None
    checks: tuple[tuple[str, bool, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "image_id": self.image_id,
            "region": self.region,
            "account": self.account,
            "verdict": self.verdict,
            "rule": self.rule,
            "reasons": list(self.reasons),
        }
        if self.family:
            d["family"] = self.family
            d["version"] = self.version
        return d


@dataclass(frozen=True, slots=True)
class Plan:
    created_at: str
    now: str
    policy: dict[str, Any]
    inventory: dict[str, Any]
    actions: tuple[Action, ...]
    decisions: tuple[Decision, ...]
    summary: dict[str, Any]
    warnings: tuple[str, ...] = field(default=())

    def body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "created_at": self.created_at,
            "now": self.now,
            "policy": self.policy,
            "inventory": self.inventory,
            "actions": [a.to_dict() for a in self.actions],
            "decisions": [d.to_dict() for d in self.decisions],
            "summary": self.summary,
            "warnings": list(self.warnings),
        }

    @staticmethod
    def checksum_of(body: dict[str, Any]) -> str:
        canon = json.dumps(
            {k: v for k, v in body.items() if k != "checksum"},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
        )
        return hashlib.sha256(canon.encode()).hexdigest()

    @property
    def checksum(self) -> str:
        return self.checksum_of(self.body())

    def to_dict(self) -> dict[str, Any]:
        body = self.body()
        body["checksum"] = self.checksum_of(body)
        return body

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @property
    def destructive(self) -> list[Action]:
        return [a for a in self.actions if a.type in DESTRUCTIVE]

    def decision(self, image_id: str) -> Decision | None:
        return next((d for d in self.decisions if d.image_id == image_id), None)

    @classmethod
    def from_dict(cls, d: dict[str, Any], verify: bool = True, file: str = "<plan>") -> Plan:
        if d.get("format") != FORMAT:
            raise InputError(
                f"not an amictl plan (format {d.get('format')!r})", file=file, key="format"
            )
        if verify:
            want = d.get("checksum")
            got = cls.checksum_of(d)
            if want != got:
                from ..errors import SafetyError

                raise SafetyError(
                    f"{file}: the plan's checksum does not match its content: it was changed after "
                    "it was made",
                    hint="make a new plan with `amictl plan` and review it",
                )
        try:
            return cls(
                created_at=d["created_at"],
                now=d["now"],
                policy=d["policy"],
                inventory=d["inventory"],
                actions=tuple(Action.from_dict(a) for a in d["actions"]),
                decisions=tuple(
                    Decision(
                        image_id=x["image_id"],
                        region=x["region"],
                        account=x.get("account", ""),
                        verdict=x["verdict"],
                        rule=x.get("rule"),
                        reasons=tuple(x.get("reasons", ())),
                        family=x.get("family"),
                        version=x.get("version"),
                    )
                    for x in d["decisions"]
                ),
                summary=d["summary"],
                warnings=tuple(d.get("warnings", ())),
            )
        except KeyError as exc:
            raise InputError(f"the plan lacks {exc.args[0]!r}", file=file) from None
