"""The built-in fleets: ``demo`` (a believable small company) and ``large`` (benchmarks).

Both are generated as fleet-file data and go through the same validation as a
user's file. Both are deterministic for a given seed.
"""

from __future__ import annotations

import random
from typing import Any

from ..errors import InputError
from .fleet import LIMITS, TOTALS, Fleet, from_dict

ACCOUNT = "123456789012"
PARTNER = "210987654321"
ORG_ARN = "arn:aws:organizations::123456789012:organization/o-abc123def4"


def demo(seed: int = 0) -> dict[str, Any]:
    """4–6 families over 18 months in two regions, with every kind of reference."""
    rng = random.Random(seed)
    images: list[dict[str, Any]] = []

    def family(fam: str, n: int, oldest: int, region: str = "us-east-1", **extra: Any) -> list[str]:
        aliases = []
        for v in range(1, n + 1):
            age = round(oldest - (oldest - 3) * (v - 1) / max(n - 1, 1)) + rng.randint(0, 2)
            alias = f"{fam}-v{v}" if region == "us-east-1" else f"{fam}-v{v}-{region}"
            # The conventions the docs teach: the version tag is the version in the name
            # (web-server-1.0.4 is tagged version=1.0.4), so `lint` is clean and
            # `launch web-server@1.0.4` finds it.
            version = f"{v}.0.{rng.randint(0, 9)}" if fam != "ci-runner" else str(v)
            img = {
                "alias": alias,
                "name": f"{fam}-{version}",
                "region": region,
                "age_days": age,
                "tags": {"family": fam, "version": version, "owner": extra.get("team", "platform")},
                "snapshots": [{"size_gib": extra.get("size", 8)}]
                + (
                    [{"size_gib": extra["data"], "device": "/dev/sdf"}] if extra.get("data") else []
                ),
            }
            if extra.get("platform"):
                img["platform"] = extra["platform"]
            if fam != "base-al2023" and extra.get("base"):
                img["source"] = extra["base"]
            images.append(img)
            aliases.append(alias)
        return aliases

    base = family("base-al2023", 3, 540, size=8, team="platform")
    web = family("web-server", 8, 520, size=16, base="base-al2023-v3", team="web")
    web_eu = family("web-server", 3, 90, region="eu-west-1", size=16, team="web")
    db = family("app-db", 5, 480, size=20, data=100, base="base-al2023-v2", team="data")
    batch = family("batch-worker", 6, 400, size=12, base="base-al2023-v3", team="data")
    win = family("win-iis", 4, 360, size=50, platform="windows", team="web")
    ci = family("ci-runner", 10, 60, size=10, team="ci")
    # issue 31: the README's rollout, drift and Allowed AMIs family: its launch template is
    # tagged amictl:family=web, its group runs 1.x, its channel prod names 2.x (last: the
    # families above keep the versions and ages they had)
    web_app = family("web", 2, 45, size=8, team="web")
    by = {i["alias"]: i for i in images}

    by[base[0]]["public"] = True
    by[batch[2]]["shared_with"] = [PARTNER]
    by[web[5]]["shared_with"] = [ORG_ARN]
    by[db[1]]["tags"]["legal-hold"] = "true"
    by[win[0]]["tags"]["retain-until"] = "2027-06-30"
    # the oldest web-server is deprecated (launching it is refused); web-server@2.0.5 launches
    by[web[0]]["deprecated_days_ago"] = 30
    by[web[2]]["deprecate_in_days"] = 30
    by[ci[0]]["disabled"] = True
    by[db[4]]["deregistration_protection"] = True
    by[web[6]]["last_launched_days_ago"] = 2
    by[batch[1]]["last_launched_days_ago"] = 12
    by[ci[9]]["last_launched_days_ago"] = 1
    # an image registered on another image's root snapshot (shares it)
    images.append(
        {
            "alias": "ci-runner-rebuild",
            "name": "ci-runner-rebuild-10.1",
            "age_days": 1,
            "tags": {"family": "ci-runner-rebuild", "version": "10.1", "owner": "ci"},
            "reuse_snapshot_of": ci[9],
        }
    )
    # a public base image owned by someone else (never ours to act on)
    images.append(
        {
            "alias": "amazon-al2023",
            "name": "al2023-ami-2023.6.20241212.0-kernel-6.1-x86_64",
            "age_days": 350,
            "owner": "137112412989",
            "owner_alias": "amazon",
            "public": True,
            "tags": {},
        }
    )

    return {
        "format": 1,
        "account": ACCOUNT,
        "regions": ["us-east-1", "eu-west-1"],
        "images": images,
        "instances": [
            {"alias": "web-1", "image": web[6], "state": "running", "count": 2},
            {"alias": "db-1", "image": db[3], "state": "stopped"},
            {"alias": "ci-old", "image": ci[2], "state": "terminated"},
            {"alias": "web-eu-1", "image": web_eu[2], "state": "running", "region": "eu-west-1"},
            {"alias": "win-1", "image": win[3], "state": "running"},
            # launched from the public Amazon Linux image, not from a channel (issue 20:
            # what `allowed-images status` reports as not allowed)
            {"alias": "stray-1", "image": "amazon-al2023", "state": "running"},
        ],
        "launch_templates": [
            {
                "alias": "web-lt",
                "name": "web-lt",
                "versions": [{"image": web[4]}, {"image": web[7]}],
                "default_version": 2,
            },
            {"alias": "batch-lt", "name": "batch-lt", "versions": [{"image": batch[4]}]},
            {"alias": "batch-spot-lt", "name": "batch-spot-lt", "versions": [{"image": batch[3]}]},
            {
                "alias": "web-app-lt",
                "name": "web-app",
                "versions": [{"image": web_app[0], "description": "web 1.x"}],
                "tags": {"amictl:family": "web"},
            },
            {
                "alias": "ci-lt",
                "name": "ci-lt",
                "versions": [{"image": ci[8]}, {"image": ci[9]}],
                "default_version": 2,
            },
        ],
        "launch_configurations": [
            {"alias": "db-lc-old", "name": "db-lc-old", "image": db[0]},
            {"alias": "win-lc", "name": "win-lc", "image": win[2]},
        ],
        "auto_scaling_groups": [
            {
                "alias": "web-asg",
                "name": "web-asg",
                "launch_template": "web-lt",
                "version": "$Default",
            },
            {"alias": "win-asg", "name": "win-asg", "launch_configuration": "win-lc"},
            # `amictl rollout web --channel prod --canary 10%`: 1 instance of 10 first
            {
                "alias": "web-app-asg",
                "name": "web-app",
                "launch_template": "web-app-lt",
                "version": "$Default",
                "desired": 10,
            },
            {
                "alias": "batch-asg",
                "name": "batch-asg",
                "mixed": {
                    "launch_template": "batch-lt",
                    "version": "$Latest",
                    "overrides": [
                        {"launch_template": "batch-spot-lt", "instance_type": "m5.large"}
                    ],
                },
            },
        ],
        "ssm_parameters": [
            # the base channel the example recipes build on (docs/bake.md)
            {
                "alias": "base-prod",
                "name": "/amictl/channels/base-al2023/prod",
                "image": base[-1],
                "data_type": "aws:ec2:image",
            },
            {"alias": "batch-golden", "name": "/golden/batch-worker/prod", "image": batch[5]},
            {
                "alias": "db-golden",
                "name": "/golden/app-db/prod",
                "image": db[2],
                "data_type": "text",
            },
            # a release channel (issue 20: `allowed-images set --from-channels`)
            {"alias": "web-prod", "name": "/amictl/channels/web-server/prod", "image": web[7]},
            # the README's `rollout web --channel prod` and `drift --family web`
            {
                "alias": "web-app-prod",
                "name": "/amictl/channels/web/prod",
                "image": web_app[-1],
                "data_type": "aws:ec2:image",
            },
        ],
        "snapshots": [
            {"alias": "orphan-1", "size_gib": 50, "age_days": 200, "made_for_deleted_image": True},
            {"alias": "orphan-2", "size_gib": 16, "age_days": 120, "made_for_deleted_image": True},
            {"alias": "orphan-3", "size_gib": 8, "age_days": 3, "made_for_deleted_image": True},
            {"alias": "backup-1", "size_gib": 20, "age_days": 90},
            {"alias": "backup-2", "size_gib": 200, "age_days": 30, "region": "eu-west-1"},
        ],
        # issue 26: the other services that launch an image (`amictl refs` shows them)
        "cloudformation_stacks": [{"alias": "web-stack", "name": "web-stack", "image": web[7]}],
        "beanstalk_environments": [
            {"alias": "iis-env", "name": "iis-env", "application": "shop", "image": win[3]}
        ],
        "image_recipes": [{"alias": "web-recipe", "name": "web-server", "image": base[-1]}],
        # the builder role + instance profile `amictl bake setup` makes (docs/bake.md)
        "builder_instance_profile": "amictl-builder",
        # issue 26: launchers beside EC2's own (`amictl refs` names them)
        "spot_requests": [{"alias": "ci-spot", "image": ci[9], "type": "persistent"}],
        "emr_clusters": [{"alias": "etl", "name": "nightly-etl", "image": db[3]}],
        "batch_compute_environments": [
            {"alias": "batch-ce", "name": "batch-workers", "image": batch[5]}
        ],
    }


REGIONS = [
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "ap-southeast-2",
    "eu-central-1",
    "us-east-2",
    "ap-northeast-1",
    "sa-east-1",
]


def large(
    seed: int = 0,
    images: int = 20000,
    snapshots: int = 30000,
    instances: int = 5000,
    launch_templates: int = 1000,
    lt_versions: int = 5,
    regions: int = 4,
    families: int = 400,
    launch_configurations: int = 100,
    auto_scaling_groups: int = 300,
    ssm_parameters: int = 100,
) -> dict[str, Any]:
    """The benchmark fleet, sized by options; snapshots counts every snapshot.

    Sizes are checked against the fleet limits (``fleet.TOTALS``) before anything is
    generated, so a huge option is refused at once instead of building a huge fleet.
    """
    if regions < 1 or regions > len(REGIONS):
        raise InputError(f"must be from 1 to {len(REGIONS)}, got {regions}", key="--regions-count")
    sizes = {
        "--images": (images, TOTALS["images"]),
        "--snapshots": (snapshots, TOTALS["snapshots"]),
        "--instances": (instances, TOTALS["instances"]),
        "--launch-templates": (launch_templates, TOTALS["launch_templates"]),
        "launch_configurations": (launch_configurations, TOTALS["launch_configurations"]),
        "auto_scaling_groups": (auto_scaling_groups, TOTALS["auto_scaling_groups"]),
        "ssm_parameters": (ssm_parameters, TOTALS["ssm_parameters"]),
    }
    for key, (n, most) in sizes.items():
        if not 0 <= n <= most:
            raise InputError(f"must be from 0 to {most:,}, got {n:,}", key=key)
    lo, hi = LIMITS["versions"]
    if not lo <= lt_versions <= hi:
        raise InputError(f"must be from {lo} to {hi}, got {lt_versions:,}", key="--lt-versions")
    if launch_templates * lt_versions > TOTALS["launch_template_versions"]:
        raise InputError(
            f"{launch_templates:,} launch templates x {lt_versions} versions is more than "
            f"the limit of {TOTALS['launch_template_versions']:,} versions",
            key="--lt-versions",
        )
    if families < 1:
        raise InputError(f"must be at least 1, got {families}", key="families")
    if images < regions and (
        instances or launch_templates or launch_configurations or ssm_parameters
    ):
        raise InputError(
            f"must be at least --regions-count ({regions}): every region needs an image "
            "for the instances, templates and parameters to use",
            key="--images",
        )
    rng = random.Random(seed)
    regs = REGIONS[:regions]
    extra = max(snapshots - images, 0)
    data_snaps = min(extra // 2, images)
    loose = extra - data_snaps
    imgs: list[dict[str, Any]] = []
    per_region: dict[str, list[str]] = {r: [] for r in regs}
    counters: dict[tuple[str, str], int] = {}
    for i in range(images):
        region = regs[i % len(regs)]
        fam = f"fam-{rng.randrange(families):04d}"
        v = counters[(region, fam)] = counters.get((region, fam), 0) + 1
        alias = f"img-{i}"
        snaps: list[dict[str, Any]] = [{"size_gib": rng.choice((8, 8, 16, 30))}]
        if i < data_snaps:
            snaps.append({"size_gib": rng.choice((50, 100, 200)), "device": "/dev/sdf"})
        imgs.append(
            {
                "alias": alias,
                "name": f"{fam}-{v}",
                "region": region,
                "age_days": rng.randint(0, 720),
                "tags": {"family": fam, "version": str(v)},
                "snapshots": snaps,
            }
        )
        per_region[region].append(alias)
    insts = []
    left, k = instances, 0
    while left > 0:
        n = min(left, rng.randint(1, 5))
        region = regs[k % len(regs)]
        insts.append(
            {
                "alias": f"inst-{k}",
                "image": rng.choice(per_region[region]),
                "count": n,
                "state": rng.choice(("running", "running", "stopped")),
            }
        )
        left -= n
        k += 1
    lts = []
    for t in range(launch_templates):
        region = regs[t % len(regs)]
        lts.append(
            {
                "alias": f"lt-{t}",
                "name": f"lt-{t}",
                "region": region,
                "versions": [{"image": rng.choice(per_region[region])} for _ in range(lt_versions)],
                "default_version": rng.randint(1, lt_versions),
            }
        )
    lcs = [
        {
            "alias": f"lc-{c}",
            "name": f"lc-{c}",
            "image": rng.choice(per_region[regs[c % len(regs)]]),
        }
        for c in range(launch_configurations)
    ]
    asgs: list[dict[str, Any]] = []
    for a in range(auto_scaling_groups):
        if a % 3 == 0 and lcs:
            asgs.append({"alias": f"asg-{a}", "launch_configuration": lcs[a % len(lcs)]["alias"]})
        elif lts:
            asgs.append(
                {
                    "alias": f"asg-{a}",
                    "launch_template": lts[a % len(lts)]["alias"],
                    "version": rng.choice(("$Default", "$Latest", "1")),
                }
            )
    ssm = [
        {
            "alias": f"prm-{p}",
            "name": f"/golden/p{p}",
            "image": rng.choice(per_region[regs[p % len(regs)]]),
        }
        for p in range(ssm_parameters)
    ]
    loose_snaps = [
        {
            "alias": f"snap-{s}",
            "size_gib": rng.choice((8, 20, 50)),
            "age_days": rng.randint(0, 720),
            "made_for_deleted_image": s % 2 == 0,
            "region": regs[s % len(regs)],
        }
        for s in range(loose)
    ]
    return {
        "format": 1,
        "account": ACCOUNT,
        "regions": regs,
        "images": imgs,
        "instances": insts,
        "launch_templates": lts,
        "launch_configurations": lcs,
        "auto_scaling_groups": asgs,
        "ssm_parameters": ssm,
        "snapshots": loose_snaps,
    }


def build(name: str, seed: int = 0, **options: Any) -> Fleet:
    if name == "demo":
        return from_dict(demo(seed), "<built-in demo fleet>")
    if name == "large":
        return from_dict(large(seed, **options), "<built-in large fleet>")
    if name == "none":
        return Fleet()
    raise InputError(f"no built-in fleet named {name!r}", hint="use demo, large, none or a file")
