"""The sandbox's speed patches (sandbox/patches/dispatch.py) change no answer.

In a child process (moto's state is global): seed a fleet, then ask moto in-process for
each listing with the patches on and with moto's own code (``moto_unpatched``); the
answers must be byte-identical but for the request id.
"""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = r"""
import json, re, time
from werkzeug.test import Client
from amictl.sandbox import builtin, patches, seed
from amictl.sandbox.patches.dispatch import moto_unpatched
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

patches.apply_all()
patches.FAST_XML["on"] = False  # moto's serializer on both sides: the speed patches are what is compared
seed.seed(builtin.build("demo"))
seed.seed(builtin.build("large", seed=3, images=200, snapshots=300, instances=300, launch_templates=12))
client = Client(DomainDispatcherApplication(create_backend_app))

def ask(service, body, target=None, region="us-east-1"):
    hdr = {
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAAMICTLSANDBOX000/20261126/"
        f"{region}/{service}/aws4_request, SignedHeaders=host, Signature=x",
    }
    if target:
        hdr["X-Amz-Target"] = target
        hdr["Content-Type"] = "application/x-amz-json-1.1"
    else:
        hdr["Content-Type"] = "application/x-www-form-urlencoded"
    r = client.post("/", data=body, headers=hdr)
    text = r.get_data(as_text=True)
    return r.status_code, re.sub(r"(?i)<request[iI]d>[^<]*</request[iI]d>|\"RequestId\": \"[^\"]*\"", "", text)

EC2 = "Version=2016-11-15&Action="
calls = [
    ("ec2", EC2 + "DescribeInstances", None, "us-east-1"),
    ("ec2", EC2 + "DescribeInstances", None, "eu-west-1"),
    ("ec2", EC2 + "DescribeInstances&MaxResults=50", None, "us-east-1"),
    ("ec2", EC2 + "DescribeLaunchTemplates", None, "us-east-1"),
    ("ec2", EC2 + "DescribeVolumes", None, "us-east-1"),
    ("ec2", EC2 + "DescribeSecurityGroups", None, "us-east-1"),
    ("ec2", EC2 + "DescribeSubnets", None, "us-east-1"),
    ("ec2", EC2 + "DescribeVpcs", None, "us-east-1"),
    ("ec2", EC2 + "DescribeTags", None, "us-east-1"),
    ("autoscaling", "Version=2011-01-01&Action=DescribeAutoScalingGroups", None, "us-east-1"),
    ("autoscaling", "Version=2011-01-01&Action=DescribeLaunchConfigurations", None, "us-east-1"),
    ("ssm", "{}", "AmazonSSM.DescribeParameters", "us-east-1"),
    ("ssm", '{"Names": ["/amictl/doesnotexist"]}', "AmazonSSM.GetParameters", "us-east-1"),
    ("ec2", EC2 + "DescribeImages&ImageId.1=ami-00000000000000000", None, "us-east-1"),
]
out = []
for service, body, target, region in calls:
    t0 = time.perf_counter(); fast = ask(service, body, target, region); t_fast = time.perf_counter() - t0
    with moto_unpatched():
        t0 = time.perf_counter(); plain = ask(service, body, target, region); t_plain = time.perf_counter() - t0
    out.append({"call": body.split("Action=")[-1] if not target else target, "region": region,
                "same": fast == plain, "status": fast[0], "size": len(fast[1]),
                "fast_s": t_fast, "plain_s": t_plain})
print(json.dumps(out))
"""


def test_speed_patches_change_no_answer() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for r in results:
        assert r["same"], r
    ok = [r for r in results if r["status"] == 200]
    assert len(ok) >= 12 and any(r["size"] > 100_000 for r in ok)  # real, big answers compared
