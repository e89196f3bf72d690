"""What apply trusts of a plan and of its limits: only what this state store's key signed.

One check of a plan's signature (:func:`check_signature`) for ``apply PLAN.json`` and for
``apply --resume`` (the stored plan, with the signature its first apply was given): a plan
this store did not sign is refused (exit 3) unless ``--accept-unsigned``.

The limits of an apply (``--max-destroy``, ``--allow-whole-family``, ...) sit in its
``apply_runs`` row, which anyone with the app role's rights can write; so the apply that
writes them also writes ``limits_signature``, the store key's HMAC of the plan checksum and
the limits. ``--resume`` keeps the original limits only when that checks; otherwise it uses
the ones given on its own command line (the defaults when none are), and says so.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import SafetyError
from ..policy.plan_model import Plan


class KeySource(Protocol):
    """What the checks need of the state store (``state.store.Store`` has it)."""

    def plan_key_or_none(self) -> tuple[bytes | None, str | None]: ...


@dataclass
class Signature:
    """The outcome of :func:`check_signature`: ``signed`` (by this store's key), the key
    (None when this role may not read it) and notes for the user."""

    signed: bool
    key: bytes | None
    notes: list[str] = field(default_factory=list)


def check_signature(
    store: KeySource, raw: dict[str, Any], *, accept_unsigned: bool, what: str
) -> Signature:
    """Whether ``raw`` (a plan's JSON, its ``signature`` included) was signed by this store;
    unsigned is a SafetyError (exit 3) unless ``accept_unsigned``."""
    key, why = store.plan_key_or_none()
    signed = key is not None and Plan.signed_by(raw, key)
    notes: list[str] = []
    if not signed:
        if why:
            notes.append(f"cannot check the plan's signature: {why}")
        if not accept_unsigned:
            raise SafetyError(
                f"{what}: the plan is not signed by this state store: it was made elsewhere, "
                "or edited after it was made, so the policy it carries (holds, rules, options) "
                "cannot be trusted",
                hint="make the plan with the same --state, or review its `policy` part and "
                "pass --accept-unsigned",
            )
        notes.append(
            "applying an unsigned plan (--accept-unsigned): its policy part is taken as "
            "reviewed; every safety fact is still re-checked live"
        )
    return Signature(signed, key, notes)


def _limits_message(checksum: str, limits: dict[str, Any]) -> bytes:
    canon = json.dumps(limits, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return f"amictl apply limits\n{checksum}\n{canon}".encode()


def sign_limits(key: bytes, checksum: str, limits: dict[str, Any]) -> str:
    """The store key's HMAC of a plan's checksum and the limits its apply was given."""
    digest = hmac.new(key, _limits_message(checksum, limits), hashlib.sha256).hexdigest()
    return "hmac-sha256:" + digest


def limits_signed(
    key: bytes | None, checksum: str, limits: dict[str, Any], signature: str | None
) -> bool:
    if key is None or not isinstance(signature, str):
        return False
    return hmac.compare_digest(signature, sign_limits(key, checksum, limits))


def own_signature(store: KeySource, checksum: str) -> tuple[str | None, bytes | None]:
    """(signature, key) for a plan this process made itself from a policy (``apply -p``,
    ``retire IMAGE``): signed as ``plan`` signs one, when this role may read the key; else
    (None, None), and its run is resumed only with ``--accept-unsigned``."""
    key, _why = store.plan_key_or_none()
    if key is None:
        return None, None
    return Plan.signature_of(checksum, key), key
