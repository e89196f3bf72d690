"""IAM identity-policy evaluation, written as data: AWS's evaluation logic for one account's
identity policies (no SCPs, boundaries, session or resource policies), and the condition
operators the persona policies use.

Why not a library: none on PyPI evaluates identity policies with condition operators and
is maintained. policyuniverse parses and expands policies, policy-sentry generates them,
parliament and cloudsplaining lint them, and moto's evaluator (moto.iam.access_control)
knows Action/Resource but only ``StringEquals`` among the operators. The rules below follow
the IAM User Guide:

* "Policy evaluation logic" (docs.aws.amazon.com/IAM/latest/UserGuide/
  reference_policies_evaluation-logic.html): an explicit Deny in any statement wins; else
  an Allow of a matching statement; else the implicit deny.
* "IAM JSON policy elements: Condition operators" (reference_policies_elements_condition_
  operators.html): every operator of a statement must be true (AND), within an operator
  every key (AND), a key matches when any of the policy's values matches (OR). A key absent
  from the request: false, except for the negated operators (``StringNotEquals``,
  ``StringNotLike``, ``ArnNotLike``) and ``...IfExists``, which are true; ``Null: true``
  is true. A multi-valued key with no values (``aws:TagKeys`` of a DeleteTags that names
  no tag) is absent. ``ForAllValues:`` is true for an absent key or an empty set (why a
  tag-key allow-list needs ``Null: {aws:TagKeys: false}`` beside it), ``ForAnyValue:``
  false; with a negated operator the negation applies to each request value
  (``ForAllValues:StringNotEquals``: no value is in the list).
* Action names are case-insensitive, ``*`` and ``?`` wildcards; resource ARNs
  case-sensitive with the same wildcards. Condition keys are case-insensitive; tag values
  case-sensitive.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY = "allowed", "explicitDeny", "implicitDeny"


@dataclass(frozen=True)
class Request:
    """One authorization: an action on one resource, with its request context."""

    action: str
    resource: str = "*"
    context: dict[str, Any] = field(default_factory=dict)  # key -> str | list[str]


def _glob(pattern: str, value: str, case: bool) -> bool:
    rx = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(rx, value, 0 if case else re.IGNORECASE) is not None


def _list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, list | tuple) else [v]


def _str_eq(p: str, v: str) -> bool:
    return p == v


OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    # name -> (value matches, negated)
    "StringEquals": (_str_eq, False),
    "StringNotEquals": (_str_eq, True),
    "StringEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), True),
    "StringLike": (lambda p, v: _glob(p, v, True), False),
    "StringNotLike": (lambda p, v: _glob(p, v, True), True),
    "ArnEquals": (lambda p, v: _glob(p, v, True), False),
    "ArnLike": (lambda p, v: _glob(p, v, True), False),
    "ArnNotEquals": (lambda p, v: _glob(p, v, True), True),
    "ArnNotLike": (lambda p, v: _glob(p, v, True), True),
    "Bool": (lambda p, v: str(p).lower() == str(v).lower(), False),
}


def _present(value: Any) -> bool:
    """A key is in the request when it has a value: a multi-valued key with no values
    (``aws:TagKeys`` of a DeleteTags without Tags) or an empty string is absent, as IAM
    treats it (``Null: true``; ``ForAllValues:`` over an empty set is true)."""
    return value is not None and value != "" and _list(value) != []


def _condition(op: str, block: dict[str, Any], ctx: dict[str, Any]) -> bool:
    lowered = {k.lower(): v for k, v in ctx.items()}
    qualifier = ""
    if ":" in op and op.split(":", 1)[0] in ("ForAllValues", "ForAnyValue"):
        qualifier, op = op.split(":", 1)
    if_exists = op.endswith("IfExists")
    base = op[: -len("IfExists")] if if_exists else op
    for key, wanted in block.items():
        actual = lowered.get(key.lower())
        present = _present(actual)
        if base == "Null":
            if (str(_list(wanted)[0]).lower() == "true") == present:
                return False
            continue
        if base not in OPERATORS:
            raise ValueError(f"condition operator {op} is not modelled")
        match, negated = OPERATORS[base]
        values = [str(w) for w in _list(wanted)]
        if not present:
            if if_exists or qualifier == "ForAllValues" or (negated and not qualifier):
                continue
            return False
        got = [str(a) for a in _list(actual)]

        # the operator on each request value (a negated one is negated per value)
        each = [any(match(p, a) for p in values) != negated for a in got]
        if qualifier == "ForAllValues":
            ok = all(each)
        elif qualifier == "ForAnyValue":
            ok = any(each)
        else:
            hit = any(match(p, a) for p in values for a in got)
            ok = not hit if negated else hit
        if not ok:
            return False
    return True


def _any(patterns: Any, value: str, case: bool) -> bool:
    return any(_glob(p, value, case) for p in _list(patterns))


def _matches(stmt: dict[str, Any], req: Request) -> bool:
    if "Action" in stmt and not _any(stmt["Action"], req.action, False):
        return False
    if "NotAction" in stmt and _any(stmt["NotAction"], req.action, False):
        return False
    if "Resource" in stmt and not _any(stmt["Resource"], req.resource, True):
        return False
    if "NotResource" in stmt and _any(stmt["NotResource"], req.resource, True):
        return False
    conditions = (stmt.get("Condition") or {}).items()
    return all(_condition(op, block, req.context) for op, block in conditions)


def statements(policies: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in policies:
        out.extend(_list(p.get("Statement", [])))
    return out


def evaluate(policies: Iterable[dict[str, Any]], req: Request) -> str:
    """``allowed``, ``explicitDeny`` or ``implicitDeny`` for the request."""
    allowed = False
    for s in statements(policies):
        if not _matches(s, req):
            continue
        if s.get("Effect") == "Deny":
            return EXPLICIT_DENY
        allowed = True
    return ALLOWED if allowed else IMPLICIT_DENY


def grants(policies: Iterable[dict[str, Any]], action: str) -> bool:
    """Whether some request for ``action`` can be allowed: an Allow statement names it and
    no Deny without a condition, on every resource, takes it away. (The conditions of the
    Allow decide which resources and requests; the tables test those.)"""
    allowed = False
    for s in statements(policies):
        named = "Action" in s and _any(s["Action"], action, False)
        named = named or ("NotAction" in s and not _any(s["NotAction"], action, False))
        if not named:
            continue
        if s.get("Effect") == "Deny":
            if not s.get("Condition") and s.get("Resource", "*") == "*":
                return False
            continue
        allowed = True
    return allowed
