"""The policy language as a registry of keys with metadata.

Parsing (``parse.py``) and the JSON Schema (``amictl policy schema``) are both
generated from these definitions, never hand-copied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..model import DEFAULT_NAME_PATTERN

DURATION_PATTERN = r"^\d+[dhw]$"


@dataclass(frozen=True)
class Key:
    name: str
    type: str  # str | int | bool | duration | enum | glob-list | str-map | object | object-list | date-or-value
    help: str
    default: Any = None
    required: bool = False
    enum: tuple[str, ...] = ()
    children: tuple[Key, ...] = field(default_factory=tuple)
    minimum: int | None = None


FAMILIES = Key(
    "families",
    "object",
    "How images are grouped into families and versions.",
    children=(
        Key("tag", "str", "Tag key holding the family name.", "family"),
        Key("version_tag", "str", "Tag key holding the version.", "version"),
        Key(
            "name_pattern",
            "str",
            "Regex on the image name with groups 'family' and 'version', used when the tags "
            "are absent.",
            DEFAULT_NAME_PATTERN,
        ),
    ),
)

HOLD = Key(
    "holds[]",
    "object",
    "An image matching any hold is kept, whatever the rules say.",
    children=(
        Key("tag", "str", 'The tag is present with any value except "false".'),
        Key(
            "until",
            "enum",
            "With `value`: the tag's value is a date; kept until that date.",
            enum=("value",),
        ),
        Key("deregistration_protection", "bool", "AWS deregistration protection is on."),
    ),
)

SELECT = Key(
    "select",
    "object",
    "All given conditions must hold for the rule to govern an image.",
    children=(
        Key("families", "glob-list", 'Globs on the family; "*" = any image that has a family.'),
        Key("name", "str", "Glob on the image name."),
        Key("tags", "str-map", "Every pair must match."),
        Key("regions", "glob-list", "Regions (default: every scanned region)."),
        Key("older_than", "duration", "On CreationDate."),
        Key("unfamilied", "bool", "Also select images with no family.", False),
        Key(
            "images",
            "glob-list",
            "Exact image ids (ami-…); with it, images with or without a family are selected.",
        ),
        Key(
            "managed",
            "glob-list",
            "Adopt the images another service manages: imagebuilder (made by EC2 Image "
            "Builder), dlm (Data Lifecycle Manager), backup (AWS Backup recovery points). "
            "Without it such an image is kept: its own service's lifecycle retires it.",
            enum=("imagebuilder", "dlm", "backup"),
        ),
    ),
)

KEEP = Key(
    "keep",
    "object",
    "Any true condition keeps the image; every true one is reported as a reason.",
    children=(
        Key(
            "latest",
            "int",
            "The N newest of the image's family in its (account, region), counted over all images "
            "of the family.",
            minimum=0,
        ),
        Key("newer_than", "duration", "Created less than this long ago."),
        Key(
            "in_use",
            "bool",
            "Something can still launch it (instance, any launch-template version, launch "
            "configuration, ASG, SSM parameter, channel). false also needs `apply --force-unsafe`.",
            True,
        ),
        Key("launched_within", "duration", "LastLaunchedTime within this duration."),
        Key("shared", "bool", "Shared with an account, organization, OU, or public.", True),
        Key("channels", "bool", "A release channel points at it.", True),
        Key(
            "channel_history",
            "int",
            "With channels: also keep the images a channel held in its last N values before "
            "the current one (the targets of `rollback`).",
            1,
            minimum=0,
        ),
        Key(
            "ancestors",
            "bool",
            "A kept image was built from it (SourceImageId / lineage tags).",
            True,
        ),
        Key("tags", "str-map", "Every pair matches."),
    ),
)

RETIRE = Key(
    "retire",
    "object",
    "What happens to a selected image that nothing keeps; delays count from the "
    "first mark (tag amictl:retire-since).",
    children=(
        Key("deprecate", "duration", "EnableImageDeprecation after this delay."),
        Key("disable", "duration", "DisableImage after this delay."),
        Key("deregister", "duration", "DeregisterImage after this delay."),
        Key(
            "snapshots",
            "enum",
            "After deregister: what to do with its snapshots that no staying image uses.",
            "delete",
            enum=("delete", "archive", "keep"),
        ),
    ),
)

RULE = Key(
    "rules[]",
    "object",
    "Rules in order; an image is governed by the FIRST rule whose select matches.",
    children=(
        Key("name", "str", "Unique rule name (appears in plans and the journal).", required=True),
        SELECT,
        KEEP,
        RETIRE,
    ),
)

ORPHANED = Key(
    "orphaned",
    "object",
    "Owned snapshots that no registered image uses.",
    children=(
        Key(
            "only_from_images",
            "bool",
            "Only snapshots made for an image, never volume backups.",
            True,
        ),
        Key("older_than", "duration", "Started at least this long ago.", "7d"),
        Key(
            "action",
            "enum",
            "What to do with them.",
            "report",
            enum=("delete", "archive", "report"),
        ),
    ),
)

RETAIN = Key(
    "retain[]",
    "object",
    "Versions a regulation says to keep, held by AWS itself: their snapshots locked, or the "
    "image stored to S3 (`amictl retain` makes it so; a selected version is kept until then).",
    children=(
        Key("name", "str", "Unique name (appears in reasons and audit findings).", required=True),
        Key(
            "select",
            "object",
            "All given conditions must hold.",
            children=(
                Key("families", "glob-list", "Globs on the family."),
                Key(
                    "channels",
                    "glob-list",
                    "Every version that was ever in one of these channels (its current value "
                    "or its history).",
                ),
                Key("tags", "str-map", "Every pair must match."),
                Key("images", "glob-list", "Exact image ids."),
            ),
            required=True,
        ),
        Key(
            "lock",
            "object",
            "Lock every snapshot of the version (EBS snapshot lock).",
            children=(
                Key("mode", "enum", "Lock mode.", "governance", enum=("governance", "compliance")),
                Key("duration", "duration", "How long each lock holds.", required=True),
                Key(
                    "cool_off",
                    "duration",
                    "Compliance mode: a cooling-off period (1h-72h) while the lock can still "
                    "be removed.",
                ),
            ),
        ),
        Key(
            "store",
            "object",
            "Store the image to S3 (CreateStoreImageTask); `amictl restore` brings it back.",
            children=(Key("bucket", "str", "The S3 bucket.", required=True),),
        ),
    ),
)

SNAPSHOTS = Key("snapshots", "object", "Snapshots outside any rule.", children=(ORPHANED,))

OPTIONS = Key(
    "options",
    "object",
    "Planner and apply options (amictl extension).",
    children=(
        Key(
            "require_recycle_bin",
            "bool",
            "apply refuses to delete where no Recycle Bin rule would keep what it "
            "deletes recoverable.",
            False,
        ),
        Key(
            "prices",
            "str-map",
            'Override snapshot prices, e.g. {standard: "0.05", archive: "0.0125"}.',
        ),
    ),
)

TOP = Key(
    "policy",
    "object",
    "An amictl lifecycle policy.",
    children=(
        Key("format", "int", "Policy format version.", 1, required=True),
        Key(
            "name",
            "str",
            "The policy's identity (default: the file's stem). Marks record it; a policy only "
            "advances or restores images it marked itself.",
        ),
        FAMILIES,
        Key("holds", "object-list", "Holds.", children=(HOLD,)),
        Key("rules", "object-list", "Rules.", children=(RULE,)),
        Key("retain", "object-list", "Retention AWS enforces.", children=(RETAIN,)),
        Key(
            "notify",
            "object",
            "Owners told before their images retire (`amictl notify`).",
            children=(
                Key(
                    "before",
                    "duration",
                    "A deregister stage is due only once the owner's notice was delivered at "
                    "least this long ago.",
                ),
            ),
        ),
        SNAPSHOTS,
        OPTIONS,
        Key(
            "iac",
            "glob-list",
            "The team's infrastructure code to read as references (docs/iac.md): Terraform "
            "`.tf` and state files, CloudFormation/SAM and Packer templates; files, or "
            "directories (git checkouts) read recursively. Relative paths are relative to "
            "the policy file. The plan carries them; apply re-reads them.",
        ),
    ),
)


def _schema(key: Key) -> dict[str, Any]:
    s: dict[str, Any]
    if key.type == "object":
        s = {
            "type": "object",
            "additionalProperties": False,
            "properties": {c.name.rstrip("[]"): _schema(c) for c in key.children},
        }
        req = [c.name for c in key.children if c.required]
        if req:
            s["required"] = req
    elif key.type == "object-list":
        s = {"type": "array", "items": _schema(key.children[0])}
    elif key.type == "str":
        s = {"type": "string"}
    elif key.type == "int":
        s = {"type": "integer"}
        if key.minimum is not None:
            s["minimum"] = key.minimum
    elif key.type == "bool":
        s = {"type": "boolean"}
    elif key.type == "duration":
        s = {"type": "string", "pattern": DURATION_PATTERN}
    elif key.type == "enum":
        s = {"enum": list(key.enum)}
    elif key.type == "glob-list":
        s = {"type": "array", "items": {"enum": list(key.enum)} if key.enum else {"type": "string"}}
    elif key.type == "str-map":
        s = {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}
    else:  # pragma: no cover - a registry error
        raise ValueError(key.type)
    s["description"] = key.help
    if key.default is not None and key.type not in ("object", "object-list"):
        s["default"] = key.default
    return s


def json_schema() -> dict[str, Any]:
    s = _schema(TOP)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://amictl.dev/schema/policy-1.json",
        "title": "amictl lifecycle policy",
        **s,
    }
