"""EMR clusters that are not terminated, and the custom AMIs they launch (issue 26).

A cluster launches its ``CustomAmiId`` on every scale-out and every replaced node; an
instance group (or an instance fleet's instance type) may name its own. A cluster that
is still starting, running, waiting or terminating keeps each of them.
"""

from __future__ import annotations

from typing import Any

from ... import interrupts
from ...model import Reference
from ..registry import SliceData, collector

LIVE_STATES = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING", "TERMINATING"]


def _pages(emr: Any, operation: str, **kwargs: Any) -> Any:
    """EMR's listings page by Marker with a fixed page size (no PageSize to ask for)."""
    for page in emr.get_paginator(operation).paginate(**kwargs):
        interrupts.check()
        yield page


def _group_images(emr: Any, cluster: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(id, what, image) of the cluster's instance groups or instance fleets."""
    cid = cluster["Id"]
    out = []
    if cluster.get("InstanceCollectionType") == "INSTANCE_FLEET":
        for page in _pages(emr, "list_instance_fleets", ClusterId=cid):
            for f in page.get("InstanceFleets", []):
                for spec in f.get("InstanceTypeSpecifications") or []:
                    if spec.get("CustomAmiId"):
                        what = f"instance fleet {f.get('Id')} ({f.get('Name', '')})"
                        out.append((f"{cid}/{f.get('Id')}", what, spec["CustomAmiId"]))
    else:
        for page in _pages(emr, "list_instance_groups", ClusterId=cid):
            for g in page.get("InstanceGroups", []):
                if g.get("CustomAmiId"):
                    what = f"instance group {g.get('Id')} ({g.get('Name', '')})"
                    out.append((f"{cid}/{g.get('Id')}", what, g["CustomAmiId"]))
    return out


@collector(
    "emr-clusters",
    "emr",
    [
        "elasticmapreduce:ListClusters",
        "elasticmapreduce:DescribeCluster",
        "elasticmapreduce:ListInstanceGroups",
        "elasticmapreduce:ListInstanceFleets",
    ],
    "EMR clusters not terminated: CustomAmiId of the cluster, its instance groups and fleets",
)
def collect_emr_clusters(emr: Any, account: str, region: str) -> SliceData:
    out = SliceData()
    ids: list[str] = []
    for page in _pages(emr, "list_clusters", ClusterStates=LIVE_STATES):
        ids.extend(c["Id"] for c in page.get("Clusters", []))
    for cid in ids:
        interrupts.check()
        cluster = emr.describe_cluster(ClusterId=cid)["Cluster"]
        out.items += 1
        state = (cluster.get("Status") or {}).get("State", "")
        label = f"EMR cluster {cid} ({cluster.get('Name', '')}, {state})"
        found = []
        if cluster.get("CustomAmiId"):
            found.append((cid, label, cluster["CustomAmiId"]))
        found += [
            (rid, f"{label} {what}", image) for rid, what, image in _group_images(emr, cluster)
        ]
        for rid, detail, image in found:
            if image.startswith("ami-"):
                out.references.append(Reference("emr-cluster", rid, detail, image, account, region))
    return out
