"""Least-privilege policies per persona (builder, releaser, consumer, retirer, auditor),
their allowed/denied tables, an IAM policy evaluator written as data, and the roles tagged
with a persona (issue 21)."""

from .evaluate import ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY, Request, evaluate
from .policies import PERSONAS, policy
from .roles import PERMISSIONS, PERSONA_TAG, PersonaRole, persona_roles
from .tables import TABLES, probes

__all__ = [
    "ALLOWED",
    "EXPLICIT_DENY",
    "IMPLICIT_DENY",
    "PERMISSIONS",
    "PERSONAS",
    "PERSONA_TAG",
    "TABLES",
    "PersonaRole",
    "Request",
    "evaluate",
    "persona_roles",
    "policy",
    "probes",
]
