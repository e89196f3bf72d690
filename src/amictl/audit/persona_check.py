"""Audit check ``role-exceeds-persona`` (issue 21): IAM roles tagged
``amictl:persona=NAME`` whose attached and inline policies allow a call that persona's
policy (``amictl iam-policy --persona NAME``) does not. The calls tried are every row of
every persona's allowed/denied table (``amictl.personas.tables``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..aws.session import Connector, Target
from ..errors import AmictlError
from ..personas.roles import PERMISSIONS, persona_roles
from .registry import AuditContext, Check, Finding, RegionState, check


def read_roles(conn: Connector, targets: list[Target], states: list[RegionState]) -> None:
    """Fill ``persona_roles`` on the first region state of each account."""
    done: set[str] = set()
    for t, rs in zip(targets, states, strict=True):
        if t.account in done:
            continue
        done.add(t.account)
        try:
            rs.persona_roles = persona_roles(conn, t)
        except AmictlError as exc:
            rs.errors.append(f"IAM roles not read: {exc.message}")


def _call(r: object) -> str:
    action = getattr(r, "action", "")
    resource = getattr(r, "resource", "*")
    return action if resource == "*" else f"{action} on {resource}"


def _persona_policy(ctx: AuditContext, persona: str) -> dict[str, Any] | None:
    try:
        return ctx.options.persona_policy(persona) if ctx.options.persona_policy else None
    except KeyError:  # not a persona amictl knows
        return None


@check(
    "role-exceeds-persona",
    "high",
    "Role allows more than its persona",
    "replace its policies with `amictl iam-policy --persona {persona}`",
    PERMISSIONS,
    "An IAM role tagged amictl:persona=NAME whose policies allow calls that the persona's "
    "least-privilege policy does not.",
)
def role_exceeds_persona(ctx: AuditContext, c: Check) -> Iterator[Finding]:
    for rs in ctx.regions:
        for role in rs.persona_roles or []:
            extra = role.exceeds(_persona_policy(ctx, role.persona))
            if not extra:
                continue
            actions = sorted({r.action for r in extra})
            detail = (
                f"persona {role.persona}; policies {', '.join(role.policy_names)} also allow "
                f"{', '.join(actions)} (e.g. {_call(extra[0])})"
            )
            yield c.finding(rs.account, "global", role.arn, detail, role.role, persona=role.persona)
