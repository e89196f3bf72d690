"""Bake recipes: the YAML model, its parser (file:line errors) and its JSON Schema.

Like the policy language (``policy/schema.py``), the recipe is a registry of keys with
metadata; parsing and ``amictl recipe schema`` are both generated from it. The recipe
types the policy reader lacks (timeouts in s/m/h, SSM document parameters, plain string
lists) are added by :class:`_RecipeReader` and :func:`_schema`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..catalog.bases import ARCHES, BASES
from ..durations import parse_duration
from ..errors import InputError
from ..policy.parse import _Reader
from ..policy.schema import Key
from ..policy.schema import _schema as _policy_schema
from ..tagnames import RESERVED_TAG_PREFIX
from ..yamlpos import Positions, loads, raise_all, read_text
from .create import BUMPS, FAMILY_RE

TIMEOUT_RE = re.compile(r"^\s*(\d+)\s*([smh]?)\s*$")
TIMEOUT_PATTERN = r"^\d+[smh]?$"
TIMEOUT_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}
MAX_TIMEOUT = 48 * 3600  # SSM executionTimeout's maximum is 172800 s
NAME_PLACEHOLDERS = ("family", "version", "date")
SHELL_DOCUMENT = "AWS-RunShellScript"
MAX_SCRIPT_BYTES = 64 * 1024

STEP = Key(
    "steps[]",
    "object",
    "One step, run on the instance through SSM Run Command: exactly one of shell, script "
    "or document.",
    children=(
        Key(
            "name",
            "str",
            "Step name (unique in its list; shown in progress and reports).",
            required=True,
        ),
        Key("shell", "str", "Shell commands (AWS-RunShellScript), one per line."),
        Key("script", "str", "A script file, relative to the recipe, run by AWS-RunShellScript."),
        Key("document", "str", "An SSM document, e.g. AWS-RunPatchBaseline."),
        Key("parameters", "params", "The document's parameters: name -> string or list."),
        Key("timeout", "timeout", "How long the step may run: seconds, or Ns / Nm / Nh.", "10m"),
    ),
)

SOURCE = Key(
    "source",
    "object",
    "The image to start from: exactly one of catalog or image.",
    required=True,
    children=(
        Key("catalog", "str", "A catalog base (amictl catalog list), e.g. al2023."),
        Key("arch", "enum", "Architecture of the catalog base.", "x86_64", enum=ARCHES),
        Key("image", "str", "An image id, FAMILY@CHANNEL or FAMILY@VERSION (owned images)."),
    ),
)

VERSION = Key(
    "version",
    "object",
    "How the new version is numbered: the family's highest version, bumped.",
    children=(Key("bump", "enum", "Which part to bump.", "minor", enum=BUMPS),),
)

BUILDER = Key(
    "builder",
    "object",
    "The instance the image is built on (terminated afterwards, whatever happens).",
    children=(
        Key("instance_type", "str", "Instance type.", "t3.micro"),
        Key("subnet", "str", "Subnet id (default: the default VPC's)."),
        Key("security_groups", "glob-list", "Security group ids."),
        Key("instance_profile", "str", "Instance profile name or ARN (SSM needs one in AWS)."),
        Key("volume_size", "int", "Root volume size, GiB (default: the source's).", minimum=1),
        Key("volume_type", "enum", "Root volume type.", "gp3", enum=("gp2", "gp3", "io1", "io2")),
        Key("ready_timeout", "timeout", "Wait this long to be running and SSM-managed.", "15m"),
    ),
)

IMAGE = Key(
    "image",
    "object",
    "The image made from the builder.",
    children=(
        Key("name", "str", "Name template: {family}, {version}, {date}.", "{family}-{version}"),
        Key("description", "str", "Image description."),
        Key("tags", "str-map", "Extra tags on the image and its snapshots."),
        Key("copy_to", "glob-list", "Regions to copy the tested image to."),
        Key("share_with", "glob-list", "Account ids to share the image with."),
        Key("encrypted", "bool", "Encrypt the root volume (and so the image).", False),
        Key("kms_key", "str", "KMS key for the encryption (default: the EBS default key)."),
        Key("timeout", "timeout", "Wait this long for the image to become available.", "1h"),
        Key(
            "watermark",
            "str",
            "Provenance watermark attached to the image, inherited by its copies: a name "
            "template ({family}), or `none`.",
            "amictl/{family}",
        ),
    ),
)

TESTS = Key(
    "tests",
    "object",
    "Tests run on a fresh instance launched from the NEW image.",
    children=(
        Key("instance_type", "str", "Instance type (default: the builder's)."),
        Key(
            "steps",
            "object-list",
            "Test steps, in order; the first failure stops.",
            children=(STEP,),
        ),
    ),
)

STALE = Key(
    "stale",
    "object",
    "What --if-stale checks besides the source image.",
    children=(Key("max_age", "duration", "Bake when the newest version is older (Nd, Nh, Nw)."),),
)

TOP = Key(
    "recipe",
    "object",
    "An amictl bake recipe.",
    children=(
        Key("format", "int", "Recipe format version.", 1, required=True),
        Key("family", "str", "The image family the bake makes a version of.", required=True),
        VERSION,
        SOURCE,
        BUILDER,
        Key(
            "provision",
            "object-list",
            "Provision steps on the builder, in order.",
            children=(STEP,),
        ),
        IMAGE,
        TESTS,
        Key("promote", "str", "Channel to promote the version to when every test passes."),
        STALE,
    ),
)


# ---------------------------------------------------------------- model


@dataclass
class Step:
    name: str
    kind: str  # shell | script | document
    document: str
    parameters: dict[str, list[str]]
    timeout: int
    line: int | None = None
    source: str | None = None  # the script file, for script steps

    @property
    def summary(self) -> str:
        if self.kind == "document":
            return f"{self.document} {json.dumps(self.parameters, sort_keys=True)}"
        if self.kind == "script":
            return f"script {self.source}"
        return "; ".join(self.parameters.get("commands", []))[:200]


@dataclass
class Recipe:
    path: str
    sha256: str
    family: str
    bump: str
    source_catalog: str | None
    source_arch: str
    source_image: str | None
    instance_type: str
    subnet: str | None
    security_groups: list[str]
    instance_profile: str | None
    volume_size: int | None
    volume_type: str
    ready_timeout: int
    provision: list[Step]
    name_template: str
    description: str | None
    tags: dict[str, str]
    copy_to: list[str]
    share_with: list[str]
    encrypted: bool
    kms_key: str | None
    image_timeout: int
    test_instance_type: str | None
    tests: list[Step]
    promote: str | None
    max_age_days: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    watermark: str | None = "amictl/{family}"  # issue 20: template of the watermark, or None

    @property
    def source_ref(self) -> str:
        """How the source is named: ``catalog:al2023/x86_64`` or the image reference."""
        if self.source_catalog:
            return f"catalog:{self.source_catalog}/{self.source_arch}"
        return str(self.source_image)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- parsing


def parse_timeout(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a timeout")
    m = TIMEOUT_RE.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a timeout (seconds, or Ns, Nm, Nh, e.g. 10m)")
    seconds = int(m.group(1)) * TIMEOUT_UNITS[m.group(2)]
    if not 1 <= seconds <= MAX_TIMEOUT:
        raise ValueError(f"{value!r}: a timeout is between 1 s and 48 h")
    return seconds


class _RecipeReader(_Reader):
    def value(self, v: Any, key: Key, path: tuple[Any, ...]) -> Any:
        if key.type == "timeout":
            try:
                return parse_timeout(v)
            except ValueError as exc:
                return self.fail(path, str(exc))
        if key.type == "params":
            if not isinstance(v, dict):
                return self.fail(path, "expected a mapping of parameter names to values")
            out: dict[str, list[str]] = {}
            for k, item in v.items():
                items = item if isinstance(item, list) else [item]
                if not items or any(isinstance(x, dict | list) or x is None for x in items):
                    return self.fail((*path, k), "expected a string or a list of strings")
                out[str(k)] = [str(x).lower() if isinstance(x, bool) else str(x) for x in items]
            return out
        return super().value(v, key, path)


def _step(raw: dict[str, Any], path: tuple[Any, ...], pos: Positions, base_dir: str) -> Step:
    given = [k for k in ("shell", "script", "document") if raw[k] is not None]
    if len(given) != 1:
        raise pos.error(path, "a step has exactly one of shell, script or document")
    kind = given[0]
    params = dict(raw["parameters"] or {})
    if kind != "document" and raw["parameters"] is not None:
        raise pos.error((*path, "parameters"), "parameters go with a document step")
    source = None
    if kind == "shell":
        commands = [c for c in raw["shell"].splitlines() if c.strip()]
        if not commands:
            raise pos.error((*path, "shell"), "no command given")
        document, params = SHELL_DOCUMENT, {"commands": commands}
    elif kind == "script":
        source = raw["script"]
        full = source if os.path.isabs(source) else os.path.join(base_dir, source)
        try:
            with open(full, "rb") as fh:
                body = fh.read(MAX_SCRIPT_BYTES + 1)
        except OSError as exc:
            raise pos.error((*path, "script"), f"cannot read {full}: {exc.strerror}") from None
        if len(body) > MAX_SCRIPT_BYTES:
            raise pos.error((*path, "script"), f"larger than {MAX_SCRIPT_BYTES // 1024} KiB")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise pos.error((*path, "script"), f"{full} is not UTF-8 text") from None
        document, params = SHELL_DOCUMENT, {"commands": text.splitlines() or [":"]}
    else:
        document = raw["document"]
        if not re.match(r"^[a-zA-Z0-9_.:/-]{3,128}$", document):
            raise pos.error((*path, "document"), f"{document!r} is not an SSM document name")
    if document == SHELL_DOCUMENT:
        # AWS-RunShellScript's own limit; SendCommand's TimeoutSeconds is the delivery limit
        params.setdefault("executionTimeout", [str(parse_timeout(raw["timeout"]))])
    return Step(
        name=raw["name"],
        kind=kind,
        document=document,
        parameters=params,
        timeout=parse_timeout(raw["timeout"]),
        line=pos.line(path),
        source=source,
    )


def _steps(raws: list[dict[str, Any]] | None, what: str, pos: Positions, base: str) -> list[Step]:
    out: list[Step] = []
    for i, raw in enumerate(raws or []):
        step = _step(raw, (what, i) if what != "tests" else ("tests", "steps", i), pos, base)
        if any(s.name == step.name for s in out):
            path = (what, i, "name") if what != "tests" else ("tests", "steps", i, "name")
            raise pos.error(path, f"duplicate step name {step.name!r}")
        out.append(step)
    return out


def parse_recipe_data(data: Any, pos: Positions, text: str = "") -> Recipe:
    if data is None:
        raise pos.error((), "the recipe is empty", hint="start with `format: 1` and `family:`")
    r = _RecipeReader(pos)
    top = r.obj(data, TOP, ())
    raise_all(r.errors)  # every key-level problem of the file at once, before the checks below
    if top["format"] != 1:
        raise pos.error(("format",), "only format 1 is supported")
    family = top["family"]
    if not FAMILY_RE.match(family) or len(family) > 100:
        raise pos.error(
            ("family",),
            f"{family!r} is not a family name: lower-case letters, digits and '-'",
        )
    src = top["source"]
    if (src["catalog"] is None) == (src["image"] is None):
        raise pos.error(("source",), "give exactly one of catalog or image")
    if src["catalog"] is not None and src["catalog"].lower() not in BASES:
        raise pos.error(
            ("source", "catalog"),
            f"{src['catalog']!r} is not a catalog base",
            hint="known bases: " + ", ".join(sorted(BASES)),
        )
    if src["image"] is not None and not (
        re.match(r"^ami-[0-9a-f]{8,17}$", src["image"])
        or re.match(r"^[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+$", src["image"])
    ):
        raise pos.error(
            ("source", "image"),
            f"{src['image']!r}: expected ami-..., FAMILY@CHANNEL or FAMILY@VERSION",
        )
    builder = top["builder"] or r.obj({}, BUILDER, ("builder",))
    image = top["image"] or r.obj({}, IMAGE, ("image",))
    name_template = image["name"]
    try:
        sample = name_template.format(family="f", version="1.0.0", date="20260101")
    except (KeyError, IndexError, ValueError):
        raise pos.error(
            ("image", "name"),
            f"{name_template!r}: placeholders are {', '.join('{' + p + '}' for p in NAME_PLACEHOLDERS)}",
        ) from None
    if "{version}" not in name_template or not re.match(
        r"^[A-Za-z0-9()\[\] ./'@_-]{3,128}$", sample
    ):
        raise pos.error(
            ("image", "name"),
            "an image name template contains {version} and makes a valid AMI name "
            "(3-128 letters, digits and ( ) [ ] space . / ' @ _ -)",
        )
    for j, region in enumerate(image["copy_to"] or ()):
        if not re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", region):
            raise pos.error(("image", "copy_to", j), f"{region!r} is not a region name")
    for j, acct in enumerate(image["share_with"] or ()):
        if not re.match(r"^\d{12}$", acct):
            raise pos.error(("image", "share_with", j), f"{acct!r} is not a 12-digit account id")
    if image["kms_key"] and not image["encrypted"]:
        raise pos.error(("image", "kms_key"), "a KMS key needs `encrypted: true`")
    for key in dict(image["tags"] or ()):
        if str(key).lower().startswith(RESERVED_TAG_PREFIX):  # bake status, lineage: amictl's
            raise pos.error(
                ("image", "tags", key),
                f"tag {key!r}: keys starting with {RESERVED_TAG_PREFIX!r} are reserved for "
                "amictl's own tags (the bake writes its status and lineage itself)",
                hint=f"choose a key without the {RESERVED_TAG_PREFIX!r} prefix",
            )
    watermark = image["watermark"]
    if watermark is not None and str(watermark).lower() == "none":
        watermark = None
    if watermark is not None:
        from ..governance.watermarks import watermark_name

        try:
            watermark_name(family, watermark)
        except InputError as exc:
            raise pos.error(("image", "watermark"), exc.detail) from None
    base_dir = os.path.dirname(os.path.abspath(pos.file)) if not pos.file.startswith("<") else "."
    provision = _steps(top["provision"], "provision", pos, base_dir)
    tests_raw = top["tests"] or {"instance_type": None, "steps": None}
    tests = _steps(tests_raw["steps"], "tests", pos, base_dir)
    if top["promote"] is not None:
        if not re.match(r"^[A-Za-z0-9_.-]{1,128}$", top["promote"]):
            raise pos.error(("promote",), f"{top['promote']!r} is not a channel name")
        if not tests:
            raise pos.error(
                ("promote",),
                "promoting needs at least one test step",
                hint="add tests: {steps: [...]}, which run on an instance of the new image",
            )
    stale = top["stale"] or {"max_age": None}
    return Recipe(
        path=pos.file,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        family=family,
        bump=(top["version"] or {"bump": "minor"})["bump"],
        source_catalog=src["catalog"].lower() if src["catalog"] else None,
        source_arch=src["arch"],
        source_image=src["image"],
        instance_type=builder["instance_type"],
        subnet=builder["subnet"],
        security_groups=list(builder["security_groups"] or []),
        instance_profile=builder["instance_profile"],
        volume_size=builder["volume_size"],
        volume_type=builder["volume_type"],
        ready_timeout=parse_timeout(builder["ready_timeout"]),
        provision=provision,
        name_template=name_template,
        description=image["description"],
        tags=dict(image["tags"] or ()),
        copy_to=list(image["copy_to"] or []),
        share_with=list(image["share_with"] or []),
        encrypted=bool(image["encrypted"]),
        kms_key=image["kms_key"],
        image_timeout=parse_timeout(image["timeout"]),
        test_instance_type=tests_raw["instance_type"],
        tests=tests,
        promote=top["promote"],
        max_age_days=(
            stale["max_age"].total_seconds() / 86400 if stale["max_age"] is not None else None
        ),
        watermark=watermark,
    )


def parse_recipe_text(text: str, file: str = "<recipe>") -> Recipe:
    data, pos = loads(text, file)
    return parse_recipe_data(data, pos, text)


def load_recipe(path: str) -> Recipe:
    return parse_recipe_text(read_text(path, "recipe"), path)


def max_age_option(value: str) -> float:
    """``--max-age 7d`` as days (InputError naming the option)."""
    try:
        return parse_duration(value).total_seconds() / 86400
    except ValueError as exc:
        raise InputError(str(exc), key="--max-age") from None


# ---------------------------------------------------------------- JSON Schema


def _schema(key: Key) -> dict[str, Any]:
    if key.type == "timeout":
        s: dict[str, Any] = {
            "type": ["integer", "string"],
            "pattern": TIMEOUT_PATTERN,
            "minimum": 1,
            "description": key.help,
        }
        if key.default is not None:
            s["default"] = key.default
        return s
    if key.type == "params":
        return {
            "type": "object",
            "additionalProperties": {
                "anyOf": [
                    {"type": ["string", "number", "boolean"]},
                    {"type": "array", "items": {"type": ["string", "number", "boolean"]}},
                ]
            },
            "description": key.help,
        }
    if key.type == "object":
        s = {
            "type": "object",
            "additionalProperties": False,
            "properties": {c.name.rstrip("[]"): _schema(c) for c in key.children},
            "description": key.help,
        }
        req = [c.name for c in key.children if c.required]
        if req:
            s["required"] = req
        return s
    if key.type == "object-list":
        return {"type": "array", "items": _schema(key.children[0]), "description": key.help}
    return _policy_schema(key)


def json_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://amictl.dev/schema/recipe-1.json",
        "title": "amictl bake recipe",
        **_schema(TOP),
    }
