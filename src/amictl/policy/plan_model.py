"""A plan is data: frozen actions, decisions, a canonical JSON form and its checksum."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..frozen import fast_init

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


@fast_init
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


@fast_init
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
            {k: v for k, v in body.items() if k not in ("checksum", "signature")},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
        )
        return hashlib.sha256(canon.encode()).hexdigest()

    @staticmethod
    def signature_of(checksum: str, key: bytes) -> str:
        """HMAC-SHA256 of the checksum with the state store's plan key: proof that this
        amictl (this state store) made the plan. Anyone can recompute a checksum; only a
        holder of the key can sign one."""
        return "hmac-sha256:" + hmac.new(key, checksum.encode(), hashlib.sha256).hexdigest()

    @classmethod
    def signed_by(cls, body: dict[str, Any], key: bytes) -> bool:
        sig = body.get("signature")
        checksum = body.get("checksum")
        if not isinstance(sig, str) or not isinstance(checksum, str):
            return False
        return hmac.compare_digest(sig, cls.signature_of(checksum, key))

    @property
    def checksum(self) -> str:
        return self.checksum_of(self.body())

    def to_dict(self) -> dict[str, Any]:
        body = self.body()
        body["checksum"] = self.checksum_of(body)
        return body

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def policy_spec(self) -> Any:
        """The policy the plan carries (holds, rules, options): apply's only source of them."""
        from .serial import policy_from_dict

        return policy_from_dict(self.policy)

    @property
    def destructive(self) -> list[Action]:
        return [a for a in self.actions if a.type in DESTRUCTIVE]

    def decision(self, image_id: str) -> Decision | None:
        return next((d for d in self.decisions if d.image_id == image_id), None)

    @classmethod
    def from_dict(
        cls, d: Any, verify: bool = True, file: str = "<plan>", text: str | None = None
    ) -> Plan:
        """Validate the shape (exit 2, naming the key and, with ``text``, the line), then the
        checksum (exit 3). The checksum proves the plan is the one reviewed, not that it is
        safe: apply re-derives every safety fact from the live account."""
        v = _Validator(file, text)
        if not isinstance(d, dict):
            raise v.err("", f"expected a JSON object, got {type(d).__name__}")
        if d.get("format") != FORMAT:
            raise v.err("format", f"not an amictl plan (format {d.get('format')!r})")
        for k in ("created_at", "now"):
            v.time(d.get(k), k)
        for k in ("policy", "inventory", "summary"):
            v.obj(d.get(k), k)
        for k in ("actions", "decisions"):
            v.list_(d.get(k), k)
        if not isinstance(d.get("inventory", {}).get("complete"), bool):
            raise v.err("inventory.complete", "expected true or false")
        from .serial import policy_from_dict

        policy_from_dict(d["policy"], file)
        actions = tuple(v.action(a, i) for i, a in enumerate(d["actions"]))
        ids = [a.id for a in actions]
        dup = sorted(i for i, n in Counter(ids).items() if n > 1)
        if dup:
            raise v.err("actions", f"duplicate action id(s) {', '.join(dup[:5])}")
        known = set(ids)
        for a in actions:
            missing = [x for x in a.after if x not in known]
            if missing:
                raise v.err(
                    f"actions[{a.id}].after", f"names actions not in the plan: {missing}", a.id
                )
        decisions = tuple(v.decision(x, i) for i, x in enumerate(d["decisions"]))
        warnings = d.get("warnings", [])
        if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
            raise v.err("warnings", "expected a list of strings")
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
        return cls(
            created_at=d["created_at"],
            now=d["now"],
            policy=d["policy"],
            inventory=d["inventory"],
            actions=actions,
            decisions=decisions,
            summary=d["summary"],
            warnings=tuple(warnings),
        )


def action_order(aid: str) -> tuple[int, str]:
    """The planner's ids ``a1, a2, ...`` in number order; any other id after them."""
    m = re.fullmatch(r"a(\d+)", aid)
    return (int(m.group(1)), "") if m else (1 << 62, aid)


ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,32}$")
ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")
IMAGE_RE = re.compile(r"^ami-[0-9a-f]{1,17}$")
SNAPSHOT_RE = re.compile(r"^snap-[0-9a-f]{1,17}$")
IMAGE_ACTIONS = {"mark", "unmark", "deprecate", "undeprecate", "disable", "enable", "deregister"}
EXPECT_KEYS = {"in_use": bool, "protected": bool, "shared": bool, "state": str}


class _Validator:
    """Strict shape checks for a plan file: every error is exit 2 with the key (and line)."""

    def __init__(self, file: str, text: str | None) -> None:
        self.file = file
        self.text = text

    def _line(self, needle: str | None) -> int | None:
        if not self.text or not needle:
            return None
        pos = self.text.find(f'"id": "{needle}"')
        if pos < 0:
            pos = self.text.find(f'"{needle}"')
        return self.text.count("\n", 0, pos) + 1 if pos >= 0 else None

    def err(self, key: str, msg: str, near: str | None = None) -> InputError:
        line = self._line(near or (key.split(".")[0] if key else None))
        return InputError(
            msg,
            file=self.file,
            line=line,
            key=key or None,
            hint="a plan file is written by `amictl plan --out`; make a new one",
        )

    def obj(self, v: Any, key: str, near: str | None = None) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.err(key, f"expected an object, got {_kind(v)}", near)
        return v

    def list_(self, v: Any, key: str, near: str | None = None) -> list[Any]:
        if not isinstance(v, list):
            raise self.err(key, f"expected a list, got {_kind(v)}", near)
        return v

    def str_(self, v: Any, key: str, near: str | None = None, pattern: Any = None) -> str:
        if not isinstance(v, str) or len(v) > 100_000:
            raise self.err(key, f"expected a string, got {_kind(v)}", near)
        if pattern is not None and not pattern.fullmatch(v):
            raise self.err(key, f"{v[:80]!r} is not a valid value here", near)
        return v

    def time(self, v: Any, key: str) -> None:
        from ..model import parse_time

        self.str_(v, key)
        try:
            t = parse_time(v)
        except (ValueError, OverflowError):
            t = None
        if t is None:
            raise self.err(key, f"{str(v)[:40]!r} is not an ISO 8601 time")

    def action(self, raw: Any, i: int) -> Action:
        near = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        key = f"actions[{i}]"
        d = self.obj(raw, key, near)
        aid = self.str_(d.get("id"), f"{key}.id", near, ID_RE)
        key = f"actions[{aid}]"
        typ = d.get("type")
        if typ not in ACTION_TYPES:
            raise self.err(
                f"{key}.type",
                f"unknown action type {typ!r} (one of {', '.join(ACTION_TYPES)})",
                near,
            )
        account = self.str_(d.get("account"), f"{key}.account", near, ACCOUNT_RE)
        region = self.str_(d.get("region"), f"{key}.region", near, REGION_RE)
        image_id = d.get("image_id")
        if image_id is not None or typ in IMAGE_ACTIONS:
            self.str_(image_id, f"{key}.image_id", near, IMAGE_RE)
        snapshot_id = d.get("snapshot_id")
        if snapshot_id is not None or typ not in IMAGE_ACTIONS:
            self.str_(snapshot_id, f"{key}.snapshot_id", near, SNAPSHOT_RE)
        reasons = self.list_(d.get("reasons", []), f"{key}.reasons", near)
        if not all(isinstance(r, str) for r in reasons):
            raise self.err(f"{key}.reasons", "expected a list of strings", near)
        after = self.list_(d.get("after", []), f"{key}.after", near)
        if not all(isinstance(x, str) for x in after):
            raise self.err(f"{key}.after", "expected a list of action ids", near)
        size = d.get("size_gib", 0)
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= 2**40:
            raise self.err(f"{key}.size_gib", f"expected a whole number of GiB, got {size!r}", near)
        unsafe = d.get("unsafe", False)
        if not isinstance(unsafe, bool):
            raise self.err(f"{key}.unsafe", f"expected true or false, got {unsafe!r}", near)
        family = d.get("family")
        if family is not None:
            self.str_(family, f"{key}.family", near)
        rule = self.str_(d.get("rule", ""), f"{key}.rule", near)
        expect = self.obj(d.get("expect") or {}, f"{key}.expect", near)
        for k, val in expect.items():
            want = EXPECT_KEYS.get(k)
            if want is None or not isinstance(val, want):
                raise self.err(f"{key}.expect.{k}", f"unexpected {k!r}: {val!r}", near)
        return Action(
            id=aid,
            type=typ,
            account=account,
            region=region,
            rule=rule,
            reasons=tuple(reasons),
            image_id=image_id,
            snapshot_id=snapshot_id,
            after=tuple(after),
            size_gib=size,
            unsafe=unsafe,
            family=family,
            expect=tuple(sorted(expect.items())),
        )

    def decision(self, raw: Any, i: int) -> Decision:
        key = f"decisions[{i}]"
        x = self.obj(raw, key)
        reasons = self.list_(x.get("reasons", []), f"{key}.reasons")
        for k in ("family", "version", "rule"):
            if x.get(k) is not None:
                self.str_(x.get(k), f"{key}.{k}")
        return Decision(
            image_id=self.str_(x.get("image_id"), f"{key}.image_id"),
            region=self.str_(x.get("region"), f"{key}.region"),
            account=self.str_(x.get("account", ""), f"{key}.account"),
            verdict=self.str_(x.get("verdict"), f"{key}.verdict"),
            rule=x.get("rule"),
            reasons=tuple(str(r) for r in reasons),
            family=x.get("family"),
            version=x.get("version"),
        )


def _kind(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(v), type(v).__name__
    )
