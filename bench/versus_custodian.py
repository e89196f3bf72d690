"""Benchmark: amictl `plan` against Cloud Custodian's `unused` AMI policy, same endpoint.

    .venv/bin/python bench/versus_custodian.py [--runs 3] [--latency-ms 40] [--modes plain,aws-model]

1. Installs Cloud Custodian (c7n, from PyPI) in its own venv, bench/.venv-custodian
   (not a project dependency; gitignored), unless it is there already.
2. Starts a private sandbox and seeds the `large` fleet (20,000 images, 4 regions).
3. For each mode (the plain sandbox, then `--aws-model`: per-call latency and EC2's
   request limits), runs the two tools interleaved N times, each cold (a fresh Custodian
   cache file / a fresh amictl state store) and warm (the cache / store of the cold run):
   Custodian `custodian run` of the `unused` AMI policy, and `amictl plan` of the
   equivalent policy (every owned image that nothing uses is marked for retirement).
4. Prints, per mode and state, the medians of: wall time, peak RSS of the tool's process
   tree (RUSAGE_CHILDREN of a wrapper process), API calls as the sandbox counted them
   (the same way for both tools), the CPU the sandbox itself spent serving the tool's calls
   (moto and its serializer: work AWS does on its own machines, here on the same cores as
   the tool), and the ratios beside their goals; then the images each flags and the
   disagreement broken down by reason.
5. Prints the breakdown of a warm run (issue 30): calls per API of each tool, and amictl's
   seconds per phase (`plan -v`: scan, decide, store, write; "start" is the rest of the
   wall time: the interpreter, imports, the policy, the connector).

amictl's byte code is compiled first (as `pip install` does for Custodian's venv), so
neither tool pays for compiling its sources when PYTHONDONTWRITEBYTECODE is set.

The machine may be shared: runs are interleaved and medians reported; the load average
is printed with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from amictl.sandbox.control import Sandbox

HERE = Path(__file__).resolve().parent
C7N_VERSION = "0.9.53"
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"]

CUSTODIAN_POLICY = """policies:
  - name: ami-unused
    resource: ami
    filters:
      - type: unused
        value: true
"""

# The same question in amictl's terms: every owned image (families or not) that nothing
# uses is retired; the first stage is the mark, so the plan flags what is unused.
AMICTL_POLICY = """format: 1
name: unused
rules:
  - name: unused
    select: {families: ["*"], unfamilied: true}
    keep: {in_use: true}
    retire: {deregister: 30d, snapshots: keep}
"""

# The child measures the tool's process tree: wall time and the peak RSS of its descendants.
WRAPPER = """
import json, resource, subprocess, sys, time
out = sys.argv[1]
t0 = time.perf_counter()
with open(out + ".stdout", "wb") as so, open(out + ".stderr", "wb") as se:
    rc = subprocess.call(sys.argv[2:], stdout=so, stderr=se)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
rss, cpu = ru.ru_maxrss / 1024, ru.ru_utime + ru.ru_stime
json.dump({"rc": rc, "wall": wall, "rss_mib": rss, "cpu": cpu}, open(out, "w"))
"""


# The floor of a warm plan that reads live what can change: a bare client (no parse, no
# decision) fetching every DescribeImages and DescribeInstances page of the regions, one
# thread per region, SigV4-signed over botocore's own HTTP session. What is left of a warm
# plan's wall time above it is the tool's own work.
FLOOR = """
import os, re, sys, threading, time
from urllib.parse import urlencode
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.httpsession import URLLib3Session
creds = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
url, http, pages = os.environ["AWS_ENDPOINT_URL"], URLLib3Session(), [0]
def read(region, params):
    token = None
    while True:
        q = dict(params, Version="2016-11-15", MaxResults="1000", **({"NextToken": token} if token else {}))
        req = AWSRequest("POST", url, data=urlencode(q),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        SigV4Auth(creds, "ec2", region).add_auth(req)
        resp = http.send(req.prepare())
        if resp.status_code == 503:
            time.sleep(0.05)
            continue
        assert resp.status_code == 200, resp.content[:300]
        pages[0] += 1
        m = re.search(rb"<nextToken>([^<]+)</nextToken>", resp.content)
        if not m:
            return
        token = m.group(1).decode()
def region(r):
    read(r, {"Action": "DescribeImages", "Owner.1": "self", "IncludeDeprecated": "true",
             "IncludeDisabled": "true"})
    read(r, {"Action": "DescribeInstances"})
threads = [threading.Thread(target=region, args=(r,)) for r in sys.argv[1:]]
[t.start() for t in threads]
[t.join() for t in threads]
print(pages[0])
"""


def ensure_custodian(venv: Path, version: str) -> Path:
    exe = venv / "bin" / "custodian"
    if exe.exists():
        return exe
    print(f"installing Cloud Custodian (c7n=={version}) in {venv} ...", flush=True)
    subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
    subprocess.check_call(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"c7n=={version}"]
    )
    return exe


def compile_amictl() -> None:
    """Byte-compile the amictl package (an editable install has no .pyc until imported
    with writes allowed; Custodian's venv got its .pyc from pip)."""
    import amictl

    pkg = Path(amictl.__file__).resolve().parent
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(pkg)], check=False, stdout=subprocess.DEVNULL
    )


def phase_seconds(stderr: str) -> dict[str, tuple[float, float]]:
    """`plan -v`'s "phase seconds (wall/cpu): scan=1.234/0.567 decide=..." line."""
    m = re.search(r"^phase seconds \(wall/cpu\): (.*)$", stderr, re.M)
    if not m:
        return {}
    out: dict[str, tuple[float, float]] = {}
    for kv in m.group(1).split():
        k, v = kv.split("=")
        wall, cpu = v.split("/")
        out[k] = (float(wall), float(cpu))
    return out


def measure(cmd: list[str], env: dict[str, str], out: Path) -> dict[str, Any]:
    subprocess.check_call([sys.executable, "-c", WRAPPER, str(out), *cmd], env=env)
    return dict(json.loads(out.read_text()))


def custodian_flagged(outdir: Path) -> set[str]:
    ids: set[str] = set()
    for f in outdir.rglob("resources.json"):
        ids.update(r["ImageId"] for r in json.loads(f.read_text()))
    return ids


# Issue 22's goals (Custodian / amictl wall time): cold, and warm (amictl re-reads what can
# change; launch-template versions come from its state store) against Custodian's cache.
GOALS = {("plain", "cold"): 1.5, ("aws-model", "cold"): 2.5, ("aws-model", "warm"): 3.0}

REASON_KINDS = [
    (
        r"^in use: launch template .* version \d+ \((?:default|latest|default, latest)\)",
        "LT default/latest version",
    ),
    (r"^in use: launch template", "LT non-default version"),
    (r"^in use: ASG", "auto-scaling group"),
    (r"^in use: launch configuration", "launch configuration (no ASG)"),
    (r"^in use: SSM parameter", "SSM parameter"),
    (r"^in use: channel", "release channel"),
    (r"^in use: .*instance", "instance"),
    (r"^shared", "shared"),
    (r"^ancestor", "ancestor of a kept image"),
]


def reason_kind(reason: str) -> str:
    for pattern, label in REASON_KINDS:
        if re.search(pattern, reason):
            return label
    return reason.split(":")[0]


def amictl_flagged(plan_file: Path) -> tuple[set[str], dict[str, list[str]]]:
    body = json.loads(plan_file.read_text())
    flagged = {d["image_id"] for d in body["decisions"] if d["verdict"] != "keep"}
    kept = {d["image_id"]: d["reasons"] for d in body["decisions"] if d["verdict"] == "keep"}
    return flagged, kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--latency-ms", type=float, default=40.0)
    ap.add_argument("--modes", default="plain,aws-model")
    ap.add_argument("--c7n-version", default=C7N_VERSION)
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--snapshots", type=int, default=30000)
    ap.add_argument("--instances", type=int, default=5000)
    ap.add_argument("--launch-templates", type=int, default=1000)
    ap.add_argument("--json", help="Also write the raw results to this file.")
    ap.add_argument(
        "--summary-json", help="Write the wall-time ratios and their goals here (make bench)."
    )
    args = ap.parse_args()
    custodian = ensure_custodian(HERE / ".venv-custodian", args.c7n_version)
    compile_amictl()
    amictl = str(Path(sys.executable).with_name("amictl"))
    work = Path(tempfile.mkdtemp(prefix="amictl-vs-c7n-"))
    (work / "c7n.yml").write_text(CUSTODIAN_POLICY)
    (work / "amictl.yml").write_text(AMICTL_POLICY)
    results: list[dict[str, Any]] = []
    flagged: dict[str, set[str]] = {}
    kept_reasons: dict[str, list[str]] = {}
    floor_of: dict[str, float] = {}  # mode -> the wall seconds of the live pages alone
    with Sandbox(work / "sandbox") as sb:
        t0 = time.perf_counter()
        res = sb.load_builtin(
            "large",
            seed=0,
            images=args.images,
            snapshots=args.snapshots,
            instances=args.instances,
            launch_templates=args.launch_templates,
        )
        print(f"fleet {res['counts']} seeded in {time.perf_counter() - t0:.1f} s", flush=True)
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "AMICTL_")) and k != "XDG_STATE_HOME"
        }
        base.update(sb.env())
        base["AWS_DEFAULT_REGION"] = REGIONS[0]
        for mode in args.modes.split(","):
            if mode == "aws-model":
                sb.set_aws_model(enabled=True, latency_ms=args.latency_ms)
            else:
                sb.reset_aws_model()
            for run in range(args.runs):
                tag = f"{mode}-{run}"
                cache = work / f"c7n-{tag}.cache"
                state = work / f"amictl-{tag}"
                state.mkdir()
                for temp in ("cold", "warm"):
                    for tool in ("custodian", "amictl"):
                        out = work / f"{tag}-{temp}-{tool}.json"
                        env = dict(base)
                        if tool == "custodian":
                            outdir = work / f"c7n-out-{tag}-{temp}"
                            cmd = [str(custodian), "run", "-s", str(outdir), "-f", str(cache)]
                            cmd += ["--cache-period", "15"]
                            cmd += [x for r in REGIONS for x in ("-r", r)]
                            cmd.append(str(work / "c7n.yml"))
                        else:
                            env["AMICTL_STATE"] = f"sqlite:///{state}/state.db"
                            env["XDG_STATE_HOME"] = str(state)
                            plan_file = work / f"plan-{tag}-{temp}.json"
                            cmd = [amictl, "plan", "-p", str(work / "amictl.yml")]
                            cmd += ["--out", str(plan_file), "-o", "json", "--no-progress"]
                            cmd += ["--region", ",".join(REGIONS), "-v"]
                        sb.set_aws_model(reset_buckets=True) if mode == "aws-model" else None
                        sb.reset_call_counts()
                        m = measure(cmd, env, out)
                        calls = sb.aws_model_state()
                        m.update(
                            mode=mode,
                            run=run,
                            state=temp,
                            tool=tool,
                            calls=calls["calls_total"],
                            throttled=calls["throttled_total"],
                            per_call=calls["calls"],
                            sandbox_cpu=calls.get("sandbox_cpu_total_s", 0.0),
                        )
                        if m["rc"] != 0:
                            err = Path(str(out) + ".stderr").read_text()[-1500:]
                            print(f"{tool} {tag} {temp} failed (rc {m['rc']}):\n{err}")
                        elif tool == "custodian":
                            flagged.setdefault("custodian", custodian_flagged(outdir))
                        else:
                            # -v prints the calls per operation: the sandbox must have counted the same
                            said = re.search(
                                r"^API calls: (\d+)$",
                                Path(str(out) + ".stderr").read_text(),
                                re.M,
                            )
                            m["v_calls"] = int(said.group(1)) if said else None
                            m["phases"] = phase_seconds(Path(str(out) + ".stderr").read_text())
                            got, kept = amictl_flagged(plan_file)
                            flagged.setdefault("amictl", got)
                            kept_reasons.update(kept)
                        results.append(m)
                        print(
                            f"  {mode:9} run {run} {temp:4} {tool:9} {m['wall']:7.1f} s "
                            f"(CPU {m['cpu']:5.1f} s) "
                            f"{m['rss_mib']:6.0f} MiB {m['calls']:6d} calls "
                            f"({m['throttled']} throttled), sandbox CPU {m['sandbox_cpu']:5.1f} s"
                            + (f"; -v said {m['v_calls']}" if tool == "amictl" else ""),
                            flush=True,
                        )
            if mode == "aws-model" or mode == args.modes.split(",")[-1]:
                floors = []
                for _ in range(max(1, args.runs)):
                    sb.set_aws_model(reset_buckets=True) if mode == "aws-model" else None
                    out = work / f"floor-{mode}-{len(floors)}.json"
                    cmd = [sys.executable, "-c", FLOOR, *REGIONS]
                    floors.append({**measure(cmd, base, out), "mode": mode})
                    print(f"  {mode:9} floor: the live pages alone {floors[-1]['wall']:5.1f} s")
                floor_of[mode] = statistics.median(f["wall"] for f in floors)
    ratios = report(results, flagged, kept_reasons, args)
    breakdown(results, floor_of)
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(ratios, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    shutil.rmtree(work, ignore_errors=True)


def report(
    results: list[dict[str, Any]],
    flagged: dict[str, set[str]],
    kept_reasons: dict[str, list[str]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    load = os.getloadavg()
    print(
        f"\nmedians of {args.runs} interleaved runs; machine: {os.cpu_count()} CPUs, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )
    print(
        f"{'mode':10} {'state':5} {'tool':10} {'wall s':>7} {'RSS MiB':>8} {'calls':>7}"
        f" {'sandbox CPU s':>14}"
    )
    med: dict[tuple[str, str, str], dict[str, float]] = {}
    for key in sorted({(r["mode"], r["state"], r["tool"]) for r in results}):
        rows = [r for r in results if (r["mode"], r["state"], r["tool"]) == key and r["rc"] == 0]
        if not rows:
            continue
        med[key] = {
            k: statistics.median(r[k] for r in rows)
            for k in ("wall", "rss_mib", "calls", "sandbox_cpu")
        }
        m = med[key]
        print(
            f"{key[0]:10} {key[1]:5} {key[2]:10} {m['wall']:7.1f} {m['rss_mib']:8.0f} {m['calls']:7.0f}"
            f" {m['sandbox_cpu']:14.1f}"
        )
    print("\nratios (Custodian / amictl; > 1 means amictl is faster / smaller / fewer):")
    ratios: dict[str, Any] = {"load_average": load, "runs": args.runs}
    for mode in dict.fromkeys(r["mode"] for r in results):
        for state in ("cold", "warm"):
            c, a = med.get((mode, state, "custodian")), med.get((mode, state, "amictl"))
            if c and a:
                goal = GOALS.get((mode, state))
                ratio = c["wall"] / a["wall"]
                verdict = ("met" if ratio >= goal else "MISSED") if goal else ""
                print(
                    f"  {mode:10} {state:5} wall {ratio:.2f}x   "
                    f"RSS {c['rss_mib'] / a['rss_mib']:.2f}x   calls {c['calls'] / max(a['calls'], 1):.2f}x"
                    + (f"   (goal >= {goal}x: {verdict})" if goal else "")
                )
                ratios[f"{state} {mode}"] = {
                    "ratio": round(c["wall"] / a["wall"], 2),
                    "custodian_s": round(c["wall"], 1),
                    "amictl_s": round(a["wall"], 1),
                    "amictl_calls": int(a["calls"]),
                    "goal": goal,
                }
    c7n, ami = flagged.get("custodian", set()), flagged.get("amictl", set())
    print(
        f"\nimages flagged unused: Custodian {len(c7n)}, amictl {len(ami)}, both {len(c7n & ami)}"
    )
    why: Counter[str] = Counter()
    for image_id in c7n - ami:
        reasons = kept_reasons.get(image_id)
        kinds = (
            sorted({reason_kind(r) for r in reasons}) if reasons else ["not owned / not selected"]
        )
        why[" + ".join(kinds)] += 1
    print(f"flagged by Custodian only ({len(c7n - ami)}), kept by amictl because:")
    for k, n in why.most_common():
        print(f"  {n:6d}  {k}")
    print(f"flagged by amictl only: {len(ami - c7n)}")
    return ratios


def breakdown(results: list[dict[str, Any]], floor_of: dict[str, float]) -> None:
    """The warm run of the last mode (the AWS model when it ran): calls per API of each
    tool (medians), amictl's seconds per phase, and the floor: reading the live pages."""
    modes = list(dict.fromkeys(r["mode"] for r in results))
    if not modes:
        return
    mode = "aws-model" if "aws-model" in modes else modes[-1]
    rows = [r for r in results if r["mode"] == mode and r["state"] == "warm" and r["rc"] == 0]
    if not rows:
        return
    print(f"\nbreakdown of a warm run ({mode}, medians): calls per API")
    ops = sorted({op for r in rows for op in r["per_call"]})
    tools = ("custodian", "amictl")
    print(f"  {'API':55} {'Custodian':>10} {'amictl':>8}")
    for op in ops:
        got = [
            statistics.median(r["per_call"].get(op, 0) for r in rows if r["tool"] == t)
            if any(r["tool"] == t for r in rows)
            else 0
            for t in tools
        ]
        print(f"  {op:55} {got[0]:10.0f} {got[1]:8.0f}")
    cpu = {
        t: statistics.median(r["cpu"] for r in rows if r["tool"] == t)
        for t in tools
        if any(r["tool"] == t for r in rows)
    }
    sb = {t: statistics.median(r["sandbox_cpu"] for r in rows if r["tool"] == t) for t in cpu}
    print(
        "CPU seconds (the tool's process tree / the sandbox serving it): "
        + ", ".join(f"{t} {cpu[t]:.2f} / {sb[t]:.2f}" for t in cpu)
    )
    ami = [r for r in rows if r["tool"] == "amictl" and r.get("phases")]
    if ami:
        names = list(dict.fromkeys(k for r in ami for k in r["phases"]))
        zero = (0.0, 0.0)
        wall = {k: statistics.median(r["phases"].get(k, zero)[0] for r in ami) for k in names}
        used = {k: statistics.median(r["phases"].get(k, zero)[1] for r in ami) for k in names}
        total = statistics.median(r["wall"] for r in ami)
        total_cpu = statistics.median(r["cpu"] for r in ami)
        wall = {"start": max(0.0, total - sum(wall.values())), **wall}
        used = {"start": max(0.0, total_cpu - sum(used.values())), **used}
        print(
            "amictl seconds per phase, wall / CPU (start: interpreter, imports, policy, "
            "connector): "
            + ", ".join(f"{k} {wall[k]:.2f} / {used[k]:.2f}" for k in wall)
            + f"; whole run {total:.2f} / {total_cpu:.2f}"
        )
    floor = floor_of.get(mode)
    if floor is not None and ami:
        c7n = [r["wall"] for r in rows if r["tool"] == "custodian"]
        goal = GOALS.get((mode, "warm"))
        need = (
            f"; {goal}x Custodian needs <= {statistics.median(c7n) / goal:.2f} s"
            if c7n and goal
            else ""
        )
        print(
            f"floor of a warm run ({mode}): the live DescribeImages/DescribeInstances pages "
            f"alone (a bare signed client, nothing parsed) {floor:.2f} s; amictl "
            f"{statistics.median(r['wall'] for r in ami):.2f} s{need}"
        )


if __name__ == "__main__":
    main()
