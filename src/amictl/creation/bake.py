"""``amictl bake``: build, test and promote a new version of a family from a recipe.

resolve source -> launch builder -> running + SSM-managed -> provision steps (Run
Command) -> CreateImage (family/version tags and lineage: recipe hash, source image,
steps) -> image available -> launch a test instance from the NEW image -> test steps
-> tag ``tested`` -> copy / share -> promote; or tag ``failed`` and report the failing
step with its output. Copies and shares are made only once the tests passed, so no
other region or account ever sees an untested image.

Builder and test instances are terminated in a ``finally`` whatever happens (failure,
timeout, Ctrl-C: the CLI runs the bake in ``interrupts.cooperative()``, so a signal
sets the stop flag, the current wait ends, the instances are terminated and
``Interrupted`` is raised). Every bake and every instance it launched is journaled
(``bake_journal``) and tagged ``amictl:bake-id`` with a deadline, so :func:`cleanup`
finds the leftovers of a killed bake from the journal and by tag.

Library code: progress goes to a callback, nothing is printed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import uuid
from typing import Any

import botocore.exceptions

from .. import interrupts
from ..aws import stopping
from ..aws.session import Connector, Target, aws_error
from ..catalog.find import find as catalog_find
from ..channels.ops import promote
from ..channels.record import record as record_promotion
from ..distribute import Grantees, change_sharing, copy_image
from ..distribute.common import Found
from ..errors import AmictlError, Interrupted, SafetyError
from ..launch.resolve import Resolved, check_launchable, resolve
from ..launch.run import launch
from ..model import iso
from ..state.store import Store
from ..tagnames import (
    ABANDONED,
    BAKE_STATUS_TAG,
    BUILDING,
    BUILT,
    FAILED,
    TESTED,
    UNUSABLE_BAKE_STATUSES,
    bake_failed,
)
from . import bake_journal
from .create import family_versions, from_instance, next_version, wait_image
from .recipe import Recipe
from .runsteps import Progress, StepResult, Waits, run_step, wait_managed

BAKE_ID_TAG = "amictl:bake-id"
BAKE_ROLE_TAG = "amictl:bake-role"
BAKE_DEADLINE_TAG = "amictl:bake-deadline"
RECIPE_HASH_TAG = "amictl:recipe-sha256"
RECIPE_TAG = "amictl:recipe"
SOURCE_REF_TAG = "amictl:source"
STEPS_TAG = "amictl:steps"
FAILED_STEP_TAG = "amictl:failed-step"
UNUSABLE = UNUSABLE_BAKE_STATUSES  # bake statuses that are not a usable version
LINEAGE_TAGS = (RECIPE_HASH_TAG, "amictl:source-image", SOURCE_REF_TAG, STEPS_TAG, BAKE_ID_TAG)

PERMISSIONS = frozenset(
    {
        "ec2:DescribeImages",
        "ec2:DescribeInstances",
        "ec2:DescribeSnapshots",
        "ec2:RunInstances",
        "ec2:TerminateInstances",
        "ec2:CreateImage",
        "ec2:CreateTags",
        "ec2:CopyImage",
        "ec2:ModifyImageAttribute",
        "ec2:ModifySnapshotAttribute",
        "iam:PassRole",
        "ssm:GetParameter",
        "ssm:GetParameterHistory",
        "ssm:PutParameter",
        "ssm:DescribeInstanceInformation",
        "ssm:SendCommand",
        "ssm:GetCommandInvocation",
        "ssm:CancelCommand",
    }
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _tag_value(text: str) -> str:
    return text if len(text) <= 256 else text[:253] + "..."


def image_tags(data: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in data.get("Tags") or []}


# ---------------------------------------------------------------- resolving


def resolve_source(conn: Connector, target: Target, recipe: Recipe) -> Resolved:
    """The source image, per the recipe: a catalog base, FAMILY@CHANNEL/VERSION or an id."""
    return resolve_source_ref(conn, target, recipe.source_ref)


def resolve_source_ref(conn: Connector, target: Target, ref: str) -> Resolved:
    """``catalog:NAME/ARCH`` (a catalog base), or an image id / FAMILY@CHANNEL / FAMILY@VERSION."""
    if not ref.startswith("catalog:"):
        return resolve(conn, target, ref)
    name, _, arch = ref[len("catalog:") :].partition("/")
    r = catalog_find(conn, [target], name, arch=arch or "x86_64").rows[0]
    ec2 = conn.client("ec2", target.region, target.role_arn)
    try:
        data = ec2.describe_images(ImageIds=[r["image_id"]])["Images"][0]
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise aws_error(exc, "DescribeImages", target.region) from None
    return Resolved(Found(target, data), f"catalog {name}: {r['source']}")


def steps_text(recipe: Recipe) -> str:
    names = [f"p:{s.name}" for s in recipe.provision] + [f"t:{s.name}" for s in recipe.tests]
    return _tag_value(",".join(names))


def plan(
    conn: Connector, target: Target, recipe: Recipe, now: dt.datetime | None = None
) -> dict[str, Any]:
    """What a bake would do (``--dry-run``): the resolved source, version, name, steps."""
    now = now or _now()
    src = resolve_source(conn, target, recipe)
    ec2 = conn.client("ec2", target.region, target.role_arn)
    version = next_version(family_versions(ec2, target, recipe.family), recipe.bump)
    return {
        "family": recipe.family,
        "version": version,
        "name": image_name(recipe, version, now),
        "account": target.account,
        "region": target.region,
        "recipe": {"path": recipe.path, "sha256": recipe.sha256},
        "source": {"ref": recipe.source_ref, "image_id": src.image_id, "reason": src.reason},
        "builder": {
            "instance_type": recipe.instance_type,
            "subnet": recipe.subnet,
            "security_groups": recipe.security_groups,
            "instance_profile": recipe.instance_profile,
            "volume_size": recipe.volume_size,
            "volume_type": recipe.volume_type,
        },
        "steps": [
            {
                "phase": "provision",
                "name": s.name,
                "document": s.document,
                "timeout": s.timeout,
                "does": s.summary,
            }
            for s in recipe.provision
        ]
        + [
            {
                "phase": "test",
                "name": s.name,
                "document": s.document,
                "timeout": s.timeout,
                "does": s.summary,
            }
            for s in recipe.tests
        ],
        "copy_to": recipe.copy_to,
        "share_with": recipe.share_with,
        "promote": recipe.promote,
    }


def image_name(recipe: Recipe, version: str, now: dt.datetime) -> str:
    return recipe.name_template.format(
        family=recipe.family, version=version, date=now.strftime("%Y%m%d")
    )


# ---------------------------------------------------------------- the bake


class _Bake:
    def __init__(
        self,
        conn: Connector,
        target: Target,
        recipe: Recipe,
        store: Store,
        progress: Progress,
        waits: Waits,
    ) -> None:
        self.conn = conn
        self.target = target
        self.recipe = recipe
        self.store = store
        self.progress = progress
        self.waits = waits
        self.ec2 = conn.client("ec2", target.region, target.role_arn)
        now = _now()
        self.bake_id = f"bake-{now.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
        budget = (
            2 * recipe.ready_timeout
            + sum(s.timeout for s in recipe.provision + recipe.tests)
            + recipe.image_timeout
            + 3600
        )
        self.deadline = now + dt.timedelta(seconds=budget)
        self.instances: list[str] = []
        self.rec: dict[str, Any] = {
            "bake_id": self.bake_id,
            "family": recipe.family,
            "version": None,
            "account": target.account,
            "region": target.region,
            "status": "running",
            "recipe": {"path": recipe.path, "sha256": recipe.sha256},
            "source": {"ref": recipe.source_ref, "image_id": None},
            "builder_instance": None,
            "test_instance": None,
            "image_id": None,
            "image_name": None,
            "steps": [],
            "failed_step": None,
            "copies": [],
            "shares": [],
            "promoted": [],
            "terminated": [],
            "error": None,
            "started_at": iso(now),
            "ended_at": None,
        }

    def emit(self, event: str, **kw: Any) -> None:
        self.progress({"event": event, "bake_id": self.bake_id, **kw})

    def checkpoint(self) -> None:
        bake_journal.update(self.store, self.rec)
        interrupts.check()

    # -- instances
    def launch(
        self,
        resolved: Resolved,
        role: str,
        instance_type: str,
        mappings: list[dict[str, Any]] | None,
    ) -> str:
        tags = {
            BAKE_ID_TAG: self.bake_id,
            BAKE_ROLE_TAG: role,
            BAKE_DEADLINE_TAG: iso(self.deadline) or "",
            "Name": f"amictl {role} {self.recipe.family} {self.bake_id}",
        }
        out = launch(
            self.conn,
            resolved,
            instance_type=instance_type,
            subnet=self.recipe.subnet,
            security_groups=self.recipe.security_groups,
            tags=tags,
            instance_profile=self.recipe.instance_profile,
            block_device_mappings=mappings,
        )
        iid = str(out["instance_ids"][0])
        self.instances.append(iid)
        bake_journal.add_instance(
            self.store, self.bake_id, iid, role, self.target.account, self.target.region
        )
        self.rec[f"{role}_instance"] = iid
        self.emit("launched", role=role, instance_id=iid, image_id=resolved.image_id)
        self.wait_ready(iid, role)
        return iid

    def wait_ready(self, iid: str, role: str) -> None:
        timeout = self.recipe.ready_timeout
        delay = self.waits.waiter_delay
        try:
            stopping.wait(
                self.ec2.get_waiter("instance_running"),
                InstanceIds=[iid],
                WaiterConfig={
                    "Delay": delay,
                    "MaxAttempts": max(1, math.ceil(timeout / max(delay, 1))),
                },
            )
        except botocore.exceptions.WaiterError as exc:
            raise AmictlError(f"{role} instance {iid} is not running: {exc}") from None
        interrupts.check()
        self.emit("running", role=role, instance_id=iid)
        seconds = wait_managed(self.conn, self.target, iid, timeout, self.waits)
        self.emit("managed", role=role, instance_id=iid, seconds=round(seconds, 3))

    def terminate_all(self) -> None:
        if not self.instances:
            return
        try:
            self.ec2.terminate_instances(InstanceIds=list(self.instances))
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            self.rec["error"] = (
                (self.rec["error"] or "")
                + f"; terminate failed: {aws_error(exc, 'TerminateInstances', self.target.region).message}"
            )
            self.rec["not_terminated"] = list(self.instances)
            self.emit("terminate-failed", instance_ids=list(self.instances))
            return
        for iid in self.instances:
            bake_journal.instance_terminated(self.store, iid)
        self.rec["terminated"] = list(self.instances)
        self.emit("terminated", instance_ids=list(self.instances))
        self.instances = []

    # -- steps
    def steps(self, iid: str, phase: str, steps: list[Any]) -> StepResult | None:
        for step in steps:
            self.emit(
                "step-start",
                phase=phase,
                step=step.name,
                document=step.document,
                timeout=step.timeout,
            )
            res = run_step(
                self.conn,
                self.target,
                iid,
                step,
                phase,
                f"amictl {self.bake_id} {phase} {step.name}",
                self.waits,
                self.progress,
            )
            self.rec["steps"].append(res.to_dict())
            self.emit(
                "step-end", phase=phase, step=step.name, status=res.status, seconds=res.seconds
            )
            if not res.ok:
                self.rec["failed_step"] = {
                    "phase": phase,
                    "name": step.name,
                    "status": res.status,
                    "response_code": res.response_code,
                    "output": res.output,
                    "error": res.error,
                }
                return res
            self.checkpoint()
        return None

    def tag_image(self, tags: dict[str, str]) -> None:
        ids = [self.rec["image_id"], *self.rec.get("snapshot_ids", [])]
        try:
            self.ec2.create_tags(
                Resources=ids, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise aws_error(exc, "CreateTags", self.target.region) from None

    # -- the pipeline
    def run(self) -> dict[str, Any]:
        r, t = self.recipe, self.target
        source = resolve_source(self.conn, t, r)
        self.rec["source"]["image_id"] = source.image_id
        self.rec["source"]["reason"] = source.reason
        self.emit("source", image_id=source.image_id, reason=source.reason)
        check_launchable(source.found, allow_deprecated=False)  # exit 3 before any launch
        src_tags = image_tags(source.found.data)
        if bake_failed(src_tags):  # a base that failed its own bake is no base
            raise SafetyError(
                f"source {source.image_id} ({source.reason}) is a failed bake "
                f"({BAKE_STATUS_TAG}={src_tags.get(BAKE_STATUS_TAG)}): not a usable version",
                hint="bake the base again until its tests pass, or name another source",
            )
        mappings = self.root_volume(source.found.data)
        builder = self.launch(source, "builder", r.instance_type, mappings)
        self.checkpoint()
        failed = self.steps(builder, "provision", r.provision)
        if failed:
            return self.finish("failed", f"provision step {failed.name} {failed.status}")
        version = next_version(family_versions(self.ec2, t, r.family), r.bump)
        now = _now()
        lineage = {
            RECIPE_HASH_TAG: r.sha256,
            RECIPE_TAG: _tag_value(os.path.basename(r.path)),
            SOURCE_REF_TAG: _tag_value(r.source_ref),
            STEPS_TAG: steps_text(r),
            BAKE_ID_TAG: self.bake_id,
            BAKE_STATUS_TAG: BUILDING,
            **r.tags,
        }
        created = from_instance(
            self.conn,
            t,
            builder,
            r.family,
            version=version,
            name=image_name(r, version, now),
            description=r.description or f"{r.family} {version} baked by amictl ({self.bake_id})",
            extra_tags=lineage,
        )
        self.rec.update(version=version, image_id=created.image_id, image_name=created.name)
        self.emit("image", image_id=created.image_id, name=created.name, version=version)
        self.checkpoint()
        data = wait_image(
            self.ec2,
            t,
            created.image_id,
            delay=self.waits.waiter_delay,
            max_attempts=max(1, math.ceil(r.image_timeout / max(self.waits.waiter_delay, 1))),
        )
        self.rec["snapshot_ids"] = Found(t, data).snapshot_ids
        self.emit("image-available", image_id=created.image_id)
        self.terminate_all()  # the builder is done with
        self.checkpoint()
        if r.tests:
            tester = self.launch(
                Resolved(Found(t, data), f"the new image {created.image_id}"),
                "test",
                r.test_instance_type or r.instance_type,
                None,
            )
            self.checkpoint()
            failed = self.steps(tester, "test", r.tests)
            if failed:
                self.tag_image(
                    {
                        BAKE_STATUS_TAG: FAILED,
                        FAILED_STEP_TAG: _tag_value(f"test:{failed.name}:{failed.status}"),
                    }
                )
                return self.finish("failed", f"test step {failed.name} {failed.status}")
            self.tag_image({BAKE_STATUS_TAG: TESTED})
            self.rec["tested"] = True  # the journal's word, which gates asking for tested read
        else:
            self.tag_image({BAKE_STATUS_TAG: BUILT})
        self.checkpoint()
        self.distribute()
        if r.promote and r.tests:
            # every region the version is in: here and each copy_to region
            regions = [t.region, *(c["region"] for c in self.rec["copies"])]
            targets = [Target(t.account, region, t.role_arn) for region in regions]
            rows = promote(self.conn, targets, r.family, version, r.promote)
            record_promotion(self.store, rows, "promote", None)
            self.rec["promoted"] = rows
            self.emit("promoted", channel=r.promote, version=version, regions=regions)
        return self.finish("succeeded", None)

    def root_volume(self, source: dict[str, Any]) -> list[dict[str, Any]] | None:
        r = self.recipe
        if r.volume_size is None and not r.encrypted and r.volume_type == "gp3":
            return None
        root = source.get("RootDeviceName") or "/dev/xvda"
        size = r.volume_size or next(
            (
                (m.get("Ebs") or {}).get("VolumeSize")
                for m in source.get("BlockDeviceMappings") or []
                if m.get("DeviceName") == root
            ),
            None,
        )
        ebs: dict[str, Any] = {"VolumeType": r.volume_type, "DeleteOnTermination": True}
        if size:
            ebs["VolumeSize"] = int(size)
        if r.encrypted:
            ebs["Encrypted"] = True
            if r.kms_key:
                ebs["KmsKeyId"] = r.kms_key
        return [{"DeviceName": root, "Ebs": ebs}]

    def distribute(self) -> None:
        r, t = self.recipe, self.target
        image_id = self.rec["image_id"]
        if r.copy_to:
            delay = self.waits.waiter_delay
            self.rec["copies"] = copy_image(
                self.conn,
                [t],
                image_id,
                r.copy_to,
                kms_key=r.kms_key,
                wait=bool(r.promote and r.tests),  # promoting a copy needs it available
                wait_delay=delay,
                wait_attempts=max(1, math.ceil(r.image_timeout / max(delay, 1))),
            )
            self.checkpoint()
            self.emit("copied", regions=r.copy_to)
        if r.share_with:
            g = Grantees(accounts=list(r.share_with), orgs=[], ous=[], public=False)
            self.rec["shares"] = [change_sharing(self.conn, [t], image_id, g, add=True)]
            self.emit("shared", accounts=r.share_with)

    def finish(self, status: str, error: str | None) -> dict[str, Any]:
        self.rec["status"] = status
        if error:
            self.rec["error"] = error
        return self.rec


def bake(
    conn: Connector,
    target: Target,
    recipe: Recipe,
    store: Store,
    *,
    progress: Progress | None = None,
    waits: Waits | None = None,
) -> dict[str, Any]:
    """Run the bake; returns the bake record (``status`` succeeded or failed).

    Raises ``Interrupted`` (with the record as ``result``) after terminating the
    instances when a stop was requested; other errors are re-raised after the same
    cleanup, the record journaled ``failed`` with the error.
    """
    b = _Bake(conn, target, recipe, store, progress or (lambda _e: None), waits or Waits())
    bake_journal.start(store, b.rec)
    b.emit("start", family=recipe.family, region=target.region)
    status = "failed"
    try:
        rec = b.run()
        status = rec["status"]
        return rec
    except Interrupted as exc:
        status = "interrupted"
        b.rec["error"] = exc.message
        exc.result = b.rec
        raise
    except (AmictlError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        b.rec["error"] = getattr(exc, "message", str(exc))
        raise
    except BaseException as exc:  # KeyboardInterrupt / Terminate outside a cooperative section
        status = "interrupted"
        b.rec["error"] = type(exc).__name__
        raise
    finally:
        with interrupts.cooperative():
            b.terminate_all()
            if (
                b.rec["image_id"]
                and status in ("failed", "interrupted")
                and not b.rec.get("failed_step")
            ):
                with contextlib.suppress(AmictlError):
                    b.tag_image({BAKE_STATUS_TAG: FAILED if status == "failed" else ABANDONED})
            b.rec["status"] = status
            b.rec["ended_at"] = iso(_now())
            bake_journal.update(store, b.rec, status)
            b.emit("end", status=status)


def lineage_of(tags: dict[str, str]) -> dict[str, str | None] | None:
    """What a bake recorded on an image (None when no bake made it): for show / versions."""
    if RECIPE_HASH_TAG not in tags and BAKE_ID_TAG not in tags:
        return None
    return {
        "recipe": tags.get(RECIPE_TAG),
        "recipe_sha256": tags.get(RECIPE_HASH_TAG),
        "source": tags.get(SOURCE_REF_TAG),
        "source_image": tags.get("amictl:source-image"),
        "steps": tags.get(STEPS_TAG),
        "bake_id": tags.get(BAKE_ID_TAG),
        "status": tags.get(BAKE_STATUS_TAG),
        "failed_step": tags.get(FAILED_STEP_TAG),
    }
