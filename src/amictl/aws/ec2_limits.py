"""EC2's request token buckets: one table for the client's pacer and the sandbox's model.

Source: the EC2 API reference, "Request throttling for the Amazon EC2 API", sections
"Request token bucket sizes and refill rates" (the category table and the table of
"uncategorized actions", which get their own sizes)
https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html

- every API is evaluated individually: each action has its own bucket per account and region;
- a category gives an action its size unless the uncategorized table lists the action;
- the listed non-mutating actions asked without a filter and without pagination draw from
  the smaller "unfiltered and unpaginated" bucket.

Only the actions amictl calls or the sandbox meets are listed from the uncategorized table;
an action missing here falls back to its category, which is what the page says for every
action it does not name.
"""

from __future__ import annotations

from collections.abc import Iterable

# (bucket maximum capacity, refill per second)
Size = tuple[float, float]

CATEGORIES: dict[str, Size] = {
    "non-mutating": (100.0, 20.0),
    "unfiltered": (50.0, 10.0),
    "mutating": (50.0, 5.0),
    "resource-intensive": (50.0, 5.0),
}

# The page's "uncategorized actions" that amictl (or the sandbox's fleets) can call.
ACTIONS: dict[str, Size] = {
    "CopyImage": (100.0, 1.0),
    "CreateLaunchTemplateVersion": (100.0, 5.0),
    "CreateSnapshot": (100.0, 5.0),
    "CreateSnapshots": (100.0, 5.0),
    "CreateTags": (100.0, 10.0),
    "CreateVolume": (100.0, 5.0),
    "DeleteSnapshot": (100.0, 5.0),
    "DeleteTags": (100.0, 10.0),
    "DeleteVolume": (100.0, 5.0),
    "DeregisterImage": (100.0, 5.0),
    "DisableFastLaunch": (5.0, 2.0),
    "EnableFastLaunch": (5.0, 2.0),
    "DisableImageBlockPublicAccess": (1.0, 0.1),
    "EnableImageBlockPublicAccess": (1.0, 0.1),
    "DisableSnapshotBlockPublicAccess": (1.0, 0.1),
    "EnableSnapshotBlockPublicAccess": (1.0, 0.1),
    "ModifyImageAttribute": (100.0, 5.0),
    "ModifyLaunchTemplate": (100.0, 5.0),
    "ModifySnapshotAttribute": (100.0, 5.0),
    "RunInstances": (5.0, 2.0),
    "StartInstances": (5.0, 2.0),
    "TerminateInstances": (100.0, 5.0),
}

RESOURCE_INTENSIVE = frozenset(
    {
        "AcceptVpcPeeringConnection",
        "AuthorizeSecurityGroupIngress",
        "CancelSpotInstanceRequests",
        "CreateKeyPair",
        "CreateVpcPeeringConnection",
        "DeleteVpcPeeringConnection",
        "RejectVpcPeeringConnection",
        "RevokeSecurityGroupIngress",
        "RequestSpotInstances",
    }
)

# Non-mutating actions that, asked without filters and without pagination, draw from the
# separate "unfiltered and unpaginated" bucket.
UNFILTERED_CANDIDATES = frozenset(
    {
        "DescribeInstances",
        "DescribeInstanceStatus",
        "DescribeNetworkInterfaces",
        "DescribeSecurityGroups",
        "DescribeSnapshots",
        "DescribeSpotInstanceRequests",
        "DescribeVolumes",
    }
)

NON_MUTATING_PREFIXES = ("Describe", "Get", "List", "Search")

# Query parameters that make a call filtered or paginated (or asked by ids).
_NARROWING: tuple[str, ...] = (
    "Filter.",
    "MaxResults",
    "NextToken",
    "InstanceId.",
    "SnapshotId.",
    "VolumeId.",
    "NetworkInterfaceId.",
    "GroupId.",
    "GroupName.",
    "SpotInstanceRequestId.",
)


def is_mutating(action: str) -> bool:
    return not action.startswith(NON_MUTATING_PREFIXES)


def category(action: str, params: Iterable[str] = ("MaxResults",)) -> str:
    """The category an EC2 call falls in: ``uncategorized`` for the actions with sizes of
    their own, else non-mutating / unfiltered / mutating / resource-intensive. ``params`` are
    the call's query parameter names (the default, a paginated call, is never unfiltered)."""
    if action in ACTIONS:
        return "uncategorized"
    if action in RESOURCE_INTENSIVE:
        return "resource-intensive"
    if not is_mutating(action):
        if action in UNFILTERED_CANDIDATES and not any(p.startswith(_NARROWING) for p in params):
            return "unfiltered"
        return "non-mutating"
    return "mutating"


def bucket(action: str, params: Iterable[str] = ("MaxResults",)) -> tuple[str, Size]:
    """(bucket name, documented size) of a call: the action's own row where the page has one,
    else its category's. The name tells buckets apart within one account and region."""
    cat = category(action, params)
    if cat == "uncategorized":
        return action, ACTIONS[action]
    return f"{cat}:{action}", CATEGORIES[cat]


def size(action: str, params: Iterable[str] = ("MaxResults",)) -> Size:
    return bucket(action, params)[1]


def floor_seconds(calls: dict[str, int], sizes: dict[str, Size] | None = None) -> float:
    """The least time ``calls`` (action -> count, made at once from full buckets) need under
    the buckets: each API has its own bucket, so the slowest one sets it. ``sizes`` overrides
    the table (a test's small buckets)."""
    worst = 0.0
    for action, n in calls.items():
        cap, refill = (sizes or {}).get(action) or size(action)
        worst = max(worst, max(0.0, n - cap) / refill)
    return worst
