"""IAM behaviours bakes need that moto 5.2.5 leaves out by default.

* AWS managed policies (``arn:aws:iam::aws:policy/NAME``, e.g.
  ``AmazonSSMManagedInstanceCore``) exist in every account, as in AWS: moto loads its copy of
  them only with ``MOTO_IAM_LOAD_MANAGED_POLICIES=true`` (all ~1,300, in every account it
  touches), so AttachRolePolicy / GetPolicy of one answered ``NoSuchEntity``. Here the one
  policy asked for is loaded from moto's data on first use (AttachRolePolicy, GetPolicy).
  https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AmazonSSMManagedInstanceCore.html

:func:`ensure_builder` is what a fleet file's ``builder_instance_profile`` seeds: the role and
instance profile ``amictl bake setup`` makes in a real account.
"""

from __future__ import annotations

import json
from typing import Any

from .helpers import patch

AWS_POLICY_PREFIX = "arn:aws:iam::aws:policy/"


def _load_managed(backend: Any, arn: str) -> None:
    """Add the AWS managed policy ``arn`` to ``backend`` from moto's data (if it knows it)."""
    if arn in backend.managed_policies or not arn.startswith(AWS_POLICY_PREFIX):
        return
    from moto.iam.aws_managed_policies import aws_managed_policies_data
    from moto.iam.models import AWSManagedPolicy

    name = arn[len(AWS_POLICY_PREFIX) :].rsplit("/", 1)[-1]
    d = _one_policy(aws_managed_policies_data, name)
    if d is None:
        return
    policy = AWSManagedPolicy.from_data(name, backend.account_id, backend.region_name, d)
    if policy.arn == arn:
        backend.managed_policies[arn] = policy


_PARSED: dict[str, Any] = {}


def _one_policy(text: str, name: str) -> dict[str, Any] | None:
    """The policy ``name`` of moto's data (4.7 MB of JSON keyed by policy name): decoded
    where its key is, not the whole text (the whole is parsed only if that fails)."""
    at = text.find(json.dumps(name) + ": {")
    if at >= 0:
        try:
            found, _end = json.JSONDecoder().raw_decode(text, at + len(json.dumps(name)) + 2)
        except ValueError:
            found = None
        if isinstance(found, dict) and "Document" in found:
            return found
    if not _PARSED:
        _PARSED.update(json.loads(text))
    got = _PARSED.get(name)
    return got if isinstance(got, dict) else None


@patch(
    "IAM: AWS managed policies (arn:aws:iam::aws:policy/...) exist in every account: "
    "AttachRolePolicy and GetPolicy load the one named on first use"
)
def aws_managed_policies_on_demand() -> None:
    from moto.iam.models import IAMBackend

    attach = IAMBackend.attach_role_policy
    get = IAMBackend.get_policy

    def attach_role_policy(self: Any, policy_arn: str, role_name: str) -> None:
        _load_managed(self, policy_arn)
        attach(self, policy_arn, role_name)

    def get_policy(self: Any, policy_arn: str) -> Any:
        _load_managed(self, policy_arn)
        return get(self, policy_arn)

    IAMBackend.attach_role_policy = attach_role_policy  # type: ignore[method-assign]
    IAMBackend.get_policy = get_policy  # type: ignore[method-assign]


def ensure_builder(account: str, name: str, policy_arns: list[str], trust: dict[str, Any]) -> None:
    """The builder role and instance profile ``name`` with ``policy_arns`` attached (seeding
    a fleet; idempotent)."""
    from moto.iam.models import iam_backends

    backend = iam_backends[account]["global"]
    if not any(r.name == name for r in backend.get_roles()):
        backend.create_role(
            role_name=name,
            assume_role_policy_document=json.dumps(trust),
            path="/",
            permissions_boundary=None,
            description="amictl bake builder and test instances (seeded)",
            tags=[],
            max_session_duration=None,
        )
    for arn in policy_arns:
        backend.attach_role_policy(arn, name)
    if name not in backend.instance_profiles:
        backend.create_instance_profile(name=name, path="/", role_names=[name])
