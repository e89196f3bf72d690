"""AWS Batch compute environments (issue 26), as the Batch API reference documents them
and moto 5.2.5 does not:

* CreateComputeEnvironment without ``serviceRole`` uses Batch's service-linked role
  ``AWSServiceRoleForBatch`` (made on first use); moto refused the call.
* A compute environment's name is 1 to 128 letters, numbers, hyphens and underscores
  (moto refused names shorter than 3 or ending in a hyphen).

Only compute environments are served for amictl: jobs (which moto runs in Docker) are
not used, so the sandbox needs no Docker.
"""

from __future__ import annotations

import json
import re
from typing import Any

from moto.batch import models as batch_models
from moto.batch.models import BatchBackend
from moto.iam.exceptions import NotFoundException as IAMNotFoundException

from .helpers import patch

SERVICE = "batch.amazonaws.com"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


def service_linked_role(backend: Any) -> str:
    """The ARN of Batch's service-linked role in the backend's account (made if needed)."""
    iam = backend.iam_backend
    try:
        return str(iam.get_role("AWSServiceRoleForBatch").arn)
    except IAMNotFoundException:  # moto's CreateServiceLinkedRole names it ...Forbatch
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": ["sts:AssumeRole"],
                    "Effect": "Allow",
                    "Principal": {"Service": [SERVICE]},
                }
            ],
        }
        role = iam.create_role(
            "AWSServiceRoleForBatch",
            json.dumps(trust),
            f"/aws-service-role/{SERVICE}/",
            permissions_boundary=None,
            description="AWS Batch",
            tags=[],
            max_session_duration="3600",
            linked_service=SERVICE,
        )
        return str(role.arn)


@patch(
    "CreateComputeEnvironment: serviceRole is optional (Batch's service-linked role); "
    "names of 1 to 128 characters"
)
def batch_service_linked_role() -> None:
    orig = BatchBackend.create_compute_environment

    def create_compute_environment(
        self: Any,
        compute_environment_name: str,
        _type: str,
        state: str,
        compute_resources: dict[str, Any],
        service_role: str,
        tags: dict[str, str] | None = None,
    ) -> Any:
        role = service_role or service_linked_role(self)
        return orig(self, compute_environment_name, _type, state, compute_resources, role, tags)

    BatchBackend.create_compute_environment = create_compute_environment  # type: ignore[method-assign]
    batch_models.COMPUTE_ENVIRONMENT_NAME_REGEX = NAME_RE
