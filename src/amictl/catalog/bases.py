"""The registry of named base images, as data (one entry per base, no per-base code).

Where the publisher keeps a public SSM parameter naming its latest image, the entry
gives the parameter's name (``{arch}`` is replaced by the publisher's architecture
word); every entry also gives the owners and the image-name pattern DescribeImages
finds its images with, used as the fallback and to list several.

Parameter names, as the publishers document them:

- Amazon Linux: ``/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64``
  and ``.../amzn2-ami-hvm-x86_64-gp2`` (AWS CDK ``AmazonLinux2023ImageSsmParameter``
  docs, "the SSM parameter does not include [the kernel] in the name"; moto 5.2.5 ships
  the same names in ``moto/ssm/resources/ami-amazon-linux-latest/``).
- Ubuntu: ``/aws/service/canonical/ubuntu/PRODUCT/RELEASE/stable/current/ARCH/VIRT_TYPE/
  VOL_TYPE/ami-id`` (Canonical, "Finding Ubuntu images with the AWS SSM Parameter
  Store", discourse.ubuntu.com/t/15507); 24.04 images are published as ``ebs-gp3``.
- Debian: ``/aws/service/debian/release/12/latest/amd64`` (wiki.debian.org/Cloud/AmazonEC2Image).
- Windows: ``/aws/service/ami-windows-latest/Windows_Server-2022-English-Full-Base``
  (AWS, "Query for the latest Windows AMI using Systems Manager Parameter Store").
- Red Hat publishes no public parameter: RHEL is found by owner and name only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ARCHES = ("x86_64", "arm64")

# Owners of the public images the catalog searches (DescribeImages Owners).
AMAZON = "amazon"  # Amazon Linux and the Windows Server images AWS publishes
CANONICAL = "099720109477"
DEBIAN = "136693071363"
RED_HAT = "309956199498"
OWNERS: dict[str, str] = {
    AMAZON: "Amazon (owner alias amazon)",
    CANONICAL: "Canonical",
    DEBIAN: "Debian",
    RED_HAT: "Red Hat",
}

# How each publisher spells the architecture in names and parameters.
DEB_ARCH = {"x86_64": "amd64", "arm64": "arm64"}
SAME_ARCH = {"x86_64": "x86_64", "arm64": "arm64"}


@dataclass(frozen=True)
class Base:
    """One named base image: who publishes it and how to find its newest image."""

    name: str
    description: str
    owners: tuple[str, ...]
    name_pattern: str  # DescribeImages name filter; {arch} = the publisher's word
    arch_words: dict[str, str] = field(default_factory=lambda: dict(SAME_ARCH))
    ssm_parameter: str | None = None  # public parameter; {arch} = the publisher's word
    platform: str = "linux"

    @property
    def arches(self) -> tuple[str, ...]:
        return tuple(a for a in ARCHES if a in self.arch_words)

    def pattern(self, arch: str) -> str:
        return self.name_pattern.format(arch=self.arch_words[arch])

    def parameter(self, arch: str) -> str | None:
        if self.ssm_parameter is None:
            return None
        return self.ssm_parameter.format(arch=self.arch_words[arch])


BASES: dict[str, Base] = {
    b.name: b
    for b in (
        Base(
            name="al2023",
            description="Amazon Linux 2023 (default kernel)",
            owners=(AMAZON,),
            name_pattern="al2023-ami-2023.*-kernel-*-{arch}",
            ssm_parameter="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}",
        ),
        Base(
            name="al2",
            description="Amazon Linux 2 (HVM, gp2)",
            owners=(AMAZON,),
            name_pattern="amzn2-ami-hvm-2.0.*-{arch}-gp2",
            ssm_parameter="/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-{arch}-gp2",
        ),
        Base(
            name="ubuntu-22.04",
            description="Ubuntu Server 22.04 LTS (jammy)",
            owners=(CANONICAL,),
            name_pattern="ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-{arch}-server-*",
            arch_words=DEB_ARCH,
            ssm_parameter=(
                "/aws/service/canonical/ubuntu/server/22.04/stable/current/{arch}/hvm/ebs-gp2/ami-id"
            ),
        ),
        Base(
            name="ubuntu-24.04",
            description="Ubuntu Server 24.04 LTS (noble)",
            owners=(CANONICAL,),
            name_pattern="ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch}-server-*",
            arch_words=DEB_ARCH,
            ssm_parameter=(
                "/aws/service/canonical/ubuntu/server/24.04/stable/current/{arch}/hvm/ebs-gp3/ami-id"
            ),
        ),
        Base(
            name="debian-12",
            description="Debian 12 (bookworm)",
            owners=(DEBIAN,),
            name_pattern="debian-12-{arch}-*",
            arch_words=DEB_ARCH,
            ssm_parameter="/aws/service/debian/release/12/latest/{arch}",
        ),
        Base(
            name="windows-2022",
            description="Windows Server 2022 English Full Base",
            owners=(AMAZON,),
            name_pattern="Windows_Server-2022-English-Full-Base-*",
            arch_words={"x86_64": "x86_64"},
            ssm_parameter="/aws/service/ami-windows-latest/Windows_Server-2022-English-Full-Base",
            platform="windows",
        ),
        Base(
            name="rhel-9",
            description="Red Hat Enterprise Linux 9 (hourly, HVM)",
            owners=(RED_HAT,),
            name_pattern="RHEL-9.*_HVM-*-{arch}-*",
        ),
    )
}
