"""Least-privilege policies per persona (builder, releaser, consumer, retirer, auditor),
their allowed/denied tables, an IAM policy evaluator written as data, and the roles tagged
with a persona (issue 21).

The policies themselves are in :mod:`amictl.personas.policies`, which derives them from
``amictl iam-policy``'s registry (:mod:`amictl.iam`); it is not imported here, so that the
audit (which ``amictl.iam`` reads) can use the evaluator and the roles without a circle."""

from .evaluate import ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY, Request, evaluate, grants
from .roles import PERMISSIONS, PERSONA_TAG, PersonaRole, persona_roles
from .tables import TABLES, probes

__all__ = [
    "ALLOWED",
    "EXPLICIT_DENY",
    "IMPLICIT_DENY",
    "PERMISSIONS",
    "PERSONA_TAG",
    "TABLES",
    "PersonaRole",
    "Request",
    "evaluate",
    "grants",
    "persona_roles",
    "probes",
]
