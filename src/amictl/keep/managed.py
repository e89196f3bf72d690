"""Images another service manages, known by what that service writes on them: amictl
never retires one unless the rule governing it adopts that service (``select.managed``).

- EC2 Image Builder: tags ``Ec2ImageBuilderArn`` (the image build version's ARN) and
  ``CreatedBy: EC2 Image Builder``; its lifecycle policies and pipelines retire them.
- Data Lifecycle Manager: tag ``aws:dlm:lifecycle-policy-id`` (with
  ``aws:dlm:lifecycle-schedule-name``); the policy's retention deregisters them.
- AWS Backup: tag ``aws:backup:source-resource`` (any ``aws:backup:`` tag), or the
  description AWS Backup writes; an AMI recovery point belongs to its backup vault's
  retention (the backup plan's lifecycle).
"""

from __future__ import annotations

from dataclasses import dataclass

SERVICES = ("imagebuilder", "dlm", "backup")
IMAGE_BUILDER_ARN = "Ec2ImageBuilderArn"
IMAGE_BUILDER_CREATED_BY = ("CreatedBy", "EC2 Image Builder")
DLM_POLICY = "aws:dlm:lifecycle-policy-id"
DLM_SCHEDULE = "aws:dlm:lifecycle-schedule-name"
BACKUP_PREFIX = "aws:backup:"
BACKUP_SOURCE = "aws:backup:source-resource"
BACKUP_DESCRIPTION = "This image is created by the AWS Backup service."


@dataclass(frozen=True)
class Owner:
    service: str  # one of SERVICES
    resource: str  # the ARN or id that owns it (build ARN, DLM policy id, backed-up resource)
    label: str  # said in plans: "EC2 Image Builder (arn:...)"


MARKER_KEYS = frozenset((IMAGE_BUILDER_ARN, IMAGE_BUILDER_CREATED_BY[0], DLM_POLICY))


def inert_key(key: str) -> bool:
    """A tag key that says nothing of which service manages an image."""
    return key not in MARKER_KEYS and not key.startswith(BACKUP_PREFIX)


def managed_by(
    tags: dict[str, str], description: str = "", inert: set[str] | None = None
) -> Owner | None:
    """The service that manages an image with these tags and description, or None.

    ``inert``: tag keys known to be :func:`inert_key`, kept by a caller that asks for many
    images (their tags share few keys): an image with only such keys, and a description
    AWS Backup did not write, is managed by none without looking further; the keys of
    every other image asked are added to it."""
    if inert is not None:
        if inert.issuperset(tags) and not description.startswith(BACKUP_DESCRIPTION):
            return None
        inert.update([k for k in tags if inert_key(k)])
    arn = tags.get(IMAGE_BUILDER_ARN)
    if arn or tags.get(IMAGE_BUILDER_CREATED_BY[0]) == IMAGE_BUILDER_CREATED_BY[1]:
        what = arn or f"tag {IMAGE_BUILDER_CREATED_BY[0]}={IMAGE_BUILDER_CREATED_BY[1]}"
        return Owner("imagebuilder", what, f"EC2 Image Builder ({what})")
    policy = tags.get(DLM_POLICY)
    if policy:
        schedule = tags.get(DLM_SCHEDULE)
        extra = f", schedule {schedule}" if schedule else ""
        return Owner("dlm", policy, f"Data Lifecycle Manager policy {policy}{extra}")
    backup = None  # the first aws:backup: tag
    for k in tags:
        if k.startswith(BACKUP_PREFIX):
            backup = k
            break
    if backup or description.startswith(BACKUP_DESCRIPTION):
        source = tags.get(BACKUP_SOURCE) or (tags[backup] if backup else "")
        what = f"recovery point of {source}" if source else "recovery point"
        return Owner("backup", source, f"AWS Backup {what} (its backup vault's retention)")
    return None


def managed_reason(owner: Owner, adopted: tuple[str, ...]) -> str | None:
    """The keep reason for a managed image under a rule adopting ``adopted``, or None."""
    if owner.service in adopted:
        return None
    return (
        f"managed by {owner.label}: that service's own lifecycle retires it "
        f"(a rule adopts it with select.managed: [{owner.service}])"
    )
