"""AWS behaviours across accounts: an image shared with an account is visible to it and can be
copied by it (moto keeps each account's images apart, so a shared image is invisible to the
account it was shared with)."""

from __future__ import annotations

from typing import Any

from moto.ec2.exceptions import InvalidAMIIdError
from moto.ec2.models.amis import AmiBackend
from moto.ec2.responses.amis import AmisResponse

from .helpers import err, image_snapshot_ids, patch


def _backends(region: str) -> list[Any]:
    from moto.ec2.models import ec2_backends

    out = []
    for account in list(ec2_backends.keys()):
        b = ec2_backends[account].get(region) if hasattr(ec2_backends[account], "get") else None
        if b is not None:
            out.append(b)
    return out


def _shared_with(ami: Any, account: str) -> bool:
    perms = getattr(ami, "launch_permissions", []) or []
    return any(p.get("UserId") == account or p.get("Group") == "all" for p in perms)


def foreign_image(backend: Any, image_id: str) -> tuple[Any, Any] | None:
    """(owner's backend, image) for an image of another account shared with this one."""
    for other in _backends(backend.region_name):
        if other.account_id == backend.account_id:
            continue
        ami = other.amis.get(image_id)
        if ami is not None and _shared_with(ami, backend.account_id):
            return other, ami
    return None


@patch(
    "DescribeImages: images of other accounts shared with the caller (launch permission to its "
    "account, or public) are visible by id and with ExecutableUsers=self"
)
def shared_images_visible() -> None:
    orig = AmiBackend.describe_images

    def describe_images(
        self: Any,
        ami_ids: Any = None,
        filters: Any = None,
        exec_users: Any = None,
        owners: Any = None,
    ) -> list[Any]:
        ids = list(ami_ids or [])
        foreign = {}
        for i in ids:
            if i not in self.amis:
                hit = foreign_image(self, i)
                if hit is not None:
                    foreign[i] = hit[1]
        local_ids = [i for i in ids if i not in foreign]
        if ids and not local_ids:
            found: list[Any] = []
        else:
            found = orig(
                self,
                ami_ids=local_ids or None,
                filters=filters,
                exec_users=exec_users,
                owners=owners,
            )
        found = list(found) + list(foreign.values())
        users = exec_users or []
        if not ids and ("self" in users or self.account_id in users):
            seen = {a.id for a in found}
            for other in _backends(self.region_name):
                if other.account_id == self.account_id:
                    continue
                for ami in list(other.amis.values()):
                    visible = ami.id not in seen and _shared_with(ami, self.account_id)
                    if visible and (not owners or ami.owner_id in owners):
                        found.append(ami)
        return found

    AmiBackend.describe_images = describe_images  # type: ignore[method-assign]


@patch(
    "CopyImage of an image another account shared: the copy (and its snapshots) belongs to "
    "the caller; refused without createVolumePermission on the source's snapshots"
)
def copy_shared_image() -> None:
    orig = AmisResponse.copy_image

    def copy_image(self: Any) -> Any:
        from moto.ec2.models import ec2_backends

        b = self.ec2_backend
        src_region = self._get_param("SourceRegion")
        src_id = self._get_param("SourceImageId")
        own = ec2_backends[b.account_id][src_region]
        if src_id in own.amis:
            return orig(self)
        hit = foreign_image(own, src_id)
        if hit is None:
            raise InvalidAMIIdError(src_id)
        owner, ami = hit
        # Copying another account's AMI needs read access to its snapshots too
        # (createVolumePermission); launching it does not.
        snaps = [owner.snapshots[s] for s in image_snapshot_ids(ami) if s in owner.snapshots]
        for s in snaps:
            users = set(owner.get_create_volume_permission_userids(s.id))
            groups = set(owner.get_create_volume_permission_groups(s.id))
            if b.account_id not in users and "all" not in groups:
                raise err(
                    "InvalidRequest",
                    f"You do not have permission to access the storage of this ami ({src_id})",
                )
        # Lend the source and its snapshots to the caller's backend for the copy, then take
        # them back: the copy logic reads them from there.
        lent_snaps = [s for s in snaps if s.id not in own.snapshots]
        own.amis[src_id] = ami
        for s in lent_snaps:
            own.snapshots[s.id] = s
        try:
            return orig(self)
        finally:
            own.amis.pop(src_id, None)
            for s in lent_snaps:
                own.snapshots.pop(s.id, None)

    AmisResponse.copy_image = copy_image  # type: ignore[method-assign]
