"""What a team's infrastructure code says about images, before it is matched against an
inventory: literal image ids, SSM parameter names (channels), and floating lookups
(``data "aws_ami"`` / Packer ``source_ami_filter`` with ``most_recent``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import InputError

# Matched inside values a parser produced, never over a file's text.
AMI_RE = re.compile(r"(?<![0-9A-Za-z-])ami-[0-9a-f]{8,17}(?![0-9A-Za-z])")
# ``resolve:ssm:NAME`` (launch templates, Terraform, CloudFormation's {{resolve:ssm:NAME:V}})
RESOLVE_RE = re.compile(r"resolve:ssm:([A-Za-z0-9_./-]+)")
# A whole value that could be an SSM parameter name (``/amictl/channels/web/prod``)
PARAMETER_RE = re.compile(r"^/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+$")


class IacError(InputError):
    """A file of the team's infrastructure code that cannot be read or parsed (exit 2):
    nothing is planned, nothing retired, until it is fixed or left out."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        super().__init__(
            message,
            file=file,
            line=line,
            hint="fix the file or leave it out of --iac / the policy's iac: key; "
            "amictl retires nothing while the code it was told to read cannot be read",
        )


@dataclass(frozen=True)
class Where:
    file: str
    line: int | None
    address: str  # resource address / logical id / JSON path

    @property
    def loc(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Literal:
    where: Where
    image_id: str


@dataclass(frozen=True)
class Parameter:
    where: Where
    name: str
    resolved: bool  # named through resolve:ssm: (else: a value that looks like a name)


@dataclass(frozen=True)
class Floating:
    """An image lookup: the images it matches, the newest of them when ``most_recent``."""

    where: Where
    source: str  # data "aws_ami" | source_ami_filter | data "amazon-ami"
    most_recent: bool
    owners: tuple[str, ...] | None = None
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    name_regex: str | None = None
    unsupported: tuple[str, ...] = ()  # what it restricts that amictl cannot evaluate


@dataclass
class Findings:
    literals: list[Literal] = field(default_factory=list)
    parameters: list[Parameter] = field(default_factory=list)
    floating: list[Floating] = field(default_factory=list)
    files: int = 0

    def scan_value(self, value: str, where: Where) -> None:
        """Image ids and parameter names inside one parsed string value."""
        for m in AMI_RE.finditer(value):
            self.literals.append(Literal(where, m.group(0)))
        for m in RESOLVE_RE.finditer(value):
            self.parameters.append(Parameter(where, m.group(1).rstrip("/."), True))
        if PARAMETER_RE.match(value):
            self.parameters.append(Parameter(where, value, False))

    def extend(self, other: Findings) -> None:
        self.literals.extend(other.literals)
        self.parameters.extend(other.parameters)
        self.floating.extend(other.floating)
        self.files += other.files
