"""A team's infrastructure code as a launcher (issue 26, amictl.iac): Terraform `.tf` and
state files, CloudFormation templates and Packer templates read with ``--iac`` / the
policy's ``iac:`` key; an image they name is kept by plan and by apply (which re-reads the
files), also when the code names it only after the plan; garbage files are bad input."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amictl.apply import live as live_mod
from amictl.iac import IacError, read_iac
from amictl.iac.findings import Floating, Where
from amictl.iac.floating import evaluate, lookup
from amictl.model import IN_USE_KINDS, Image, Inventory, Reference
from amictl.policy import parse_policy_text
from amictl.policy.serial import policy_from_dict, policy_to_dict
from amictl.state.store import Store
from cli_fleet import CliFleet

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "iac"
PINNED = "ami-0a1b2c3d4e5f60718"  # the literal id of examples/iac (main.tf, web.yaml, state)
NOW = dt.datetime.now(dt.UTC)
ACCOUNT = "123456789012"


# ------------------------------------------------------------------ the reading, no AWS


def _img(iid: str, name: str, days: int, **kw: Any) -> Image:
    fam = name.rsplit("-", 1)[0]
    return Image(
        iid,
        ACCOUNT,
        kw.pop("region", "us-east-1"),
        name=name,
        owner_id=kw.pop("owner", ACCOUNT),
        created_at=NOW - dt.timedelta(days=days),
        tags={"family": fam, **kw.pop("tags", {})},
        **kw,
    )


def _inventory() -> Inventory:
    imgs = [
        _img("ami-00000000000000001", "batch-worker-1", 90),
        _img("ami-00000000000000002", "batch-worker-2", 60),
        _img("ami-00000000000000003", "batch-worker-3", 30),
        _img("ami-00000000000000004", "batch-worker-3", 10, region="eu-west-1"),
        _img(PINNED, "bastion-1", 400),
        _img("ami-00000000000000005", "web-server-7", 20),
        _img("ami-00000000000000006", "base-al2023-3", 20),
        _img("ami-00000000000000007", "app-db-1", 50),
        _img("ami-00000000000000008", "app-db-2", 5),
    ]
    refs = [
        Reference(
            "channel",
            "/amictl/channels/web-server/prod",
            "channel prod",
            "ami-00000000000000005",
            ACCOUNT,
            "us-east-1",
        ),
        Reference(
            "channel",
            "/amictl/channels/base-al2023/prod",
            "channel prod",
            "ami-00000000000000006",
            ACCOUNT,
            "us-east-1",
        ),
    ]
    return Inventory(images=imgs, references=refs, accounts=[ACCOUNT], regions=["us-east-1"])


def _by_image(refs: list[Reference]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in refs:
        assert r.kind == "iac"
        out.setdefault(r.image_id, []).append(r.detail)
    return out


def test_the_examples_name_their_images_with_file_line_and_address():
    got = read_iac([str(EXAMPLES)], _inventory(), NOW)
    refs = _by_image(got.references)
    assert got.files == 5 and got.warnings == []
    pinned = " ".join(refs[PINNED])
    assert "terraform/main.tf:6 var.bastion_ami" in pinned
    assert "cloudformation/web.yaml:15 Mappings.Pinned" in pinned
    assert "terraform.tfstate aws_instance.bastion (ami)" in pinned
    web = " ".join(refs["ami-00000000000000005"])  # the channel, from Terraform and CFN
    assert "main.tf:17 aws_launch_template.web: follows channel" in web
    assert "web.yaml:34 Resources.WebTemplate: follows channel" in web  # {{resolve:ssm:NAME}}
    base = " ".join(refs["ami-00000000000000006"])
    assert "web.yaml:10 Parameters.BaseImage" in base  # SSM parameter type's Default
    assert "base.pkr.hcl:11 source.amazon-ebs.app: source_ami_filter" in base
    # data "aws_ami" most_recent: the newest batch-worker per (account, region) only
    assert "main.tf:22 data.aws_ami.batch" in " ".join(refs["ami-00000000000000003"])
    assert "ami-00000000000000004" in refs  # eu-west-1's newest: the code's region is unknown
    assert "ami-00000000000000001" not in refs and "ami-00000000000000002" not in refs
    assert "ami-00000000000000008" in refs and "ami-00000000000000007" not in refs  # legacy JSON
    assert "iac" in IN_USE_KINDS


def _floating(**body: Any) -> Floating:
    return lookup(body, Where("x.tf", 1, "data.aws_ami.x"), 'data "aws_ami"')


def test_a_lookup_keeps_the_newest_match_and_never_fewer_than_it_could_match():
    inv = _inventory()
    owned = [i for i in inv.images if i.owned]
    ids = lambda f: sorted(i.image_id[-1] for i in evaluate(f, owned, NOW)[0])  # noqa: E731
    name = [{"name": "name", "values": ["batch-worker-*"]}]
    assert ids(_floating(most_recent=True, filter=name, region="x")) == ["3", "4"]
    # the newest is deprecated: Terraform falls back to the one before, both are kept
    inv.by_id["ami-00000000000000003"].deprecation_time = NOW - dt.timedelta(days=1)
    assert ids(_floating(most_recent=True, filter=name)) == ["2", "3", "4"]
    # no most_recent: every match (Terraform fails unless exactly one matches)
    assert ids(_floating(filter=name)) == ["1", "2", "3", "4"]
    # what amictl cannot evaluate keeps every image the rest matches, with a warning
    kept, unsupported, _ = evaluate(
        _floating(most_recent=True, filter=[*name, {"name": "hypervisor", "values": ["xen"]}]),
        owned,
        NOW,
    )
    assert len(kept) == 4 and unsupported == ["filter hypervisor=xen"]
    f = _floating(most_recent=True, filter=[{"name": "tag:family", "values": ["${var.fam}"]}])
    assert len(evaluate(f, owned, NOW)[0]) == len(owned)
    assert ids(_floating(most_recent=True, executable_users=["self"], filter=name)) == [
        "1",
        "2",
        "3",
        "4",
    ]
    # owners: another account's id or an alias matches none of ours; our id and self do
    assert ids(_floating(most_recent=True, owners=["amazon"], filter=name)) == []
    assert ids(_floating(most_recent=True, owners=[ACCOUNT], name_regex="worker-2$")) == ["2"]


def test_the_policy_carries_absolute_iac_paths_into_the_plan(tmp_path):
    pol = tmp_path / "p.yaml"
    pol.write_text(
        "format: 1\niac: [infra, ../shared/net.tf]\nrules:\n"
        "  - {name: r, select: {families: ['*']}, retire: {deregister: 0d}}\n"
    )
    from amictl.policy import load_policy

    p = load_policy(str(pol))
    assert p.iac == (str(tmp_path / "infra"), str(tmp_path.parent / "shared" / "net.tf"))
    assert policy_from_dict(policy_to_dict(p)).iac == p.iac
    plain = parse_policy_text("format: 1\nrules: []\n")
    assert "iac" not in policy_to_dict(plain)  # plans without IaC keep their shape


GARBAGE = {
    "bad.tf": ('resource "aws_instance" "x" {\n  ami = "ami-0123456789abcdef0"\n  a = = 1\n}\n', 3),
    "bad.yaml": ("Resources:\n  A:\n    Type: AWS::EC2::Instance\n    Properties: [ami-1, 2\n", 5),
    "bad.json": ('{"Resources": {"A": {"ImageId": "ami-0123456789abcdef0",}}}', 1),
    "terraform.tfstate": ("version = 4\nnot json at all\n", 1),
    "bad.pkr.hcl": ('source "amazon-ebs" "x" {\n  source_ami_filter {\n', 3),
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_a_garbage_file_is_bad_input_naming_file_and_line(tmp_path, name):
    text, line = GARBAGE[name]
    (tmp_path / name).write_text(text)
    with pytest.raises(IacError) as err:
        read_iac([str(tmp_path)], _inventory(), NOW)
    assert err.value.exit_code == 2
    assert err.value.message.startswith(f"{tmp_path / name}:{line}: "), err.value.message


def test_an_unreadable_path_is_bad_input(tmp_path):
    with pytest.raises(IacError, match="no such file or directory"):
        read_iac([str(tmp_path / "missing")], _inventory(), NOW)
    f = tmp_path / "binary.yaml"
    f.write_bytes(b"\xff\xfe ami-\x00")
    with pytest.raises(IacError, match="not UTF-8"):
        read_iac([str(f)], _inventory(), NOW)


# ------------------------------------------------------------ end to end, on the sandbox

FLEET = """
images:
  - {alias: bw1, name: batch-worker-1.0.0, age_days: 90, tags: {family: batch-worker, version: 1.0.0}}
  - {alias: bw2, name: batch-worker-2.0.0, age_days: 60, tags: {family: batch-worker, version: 2.0.0}}
  - {alias: bw3, name: batch-worker-3.0.0, age_days: 30, tags: {family: batch-worker, version: 3.0.0}}
  - {alias: pin, name: bastion-1.0.0, age_days: 400, tags: {family: bastion, version: 1.0.0}}
  - {alias: web, name: web-server-1.0.0, age_days: 20, tags: {family: web-server, version: 1.0.0}}
  - {alias: base, name: base-al2023-1.0.0, age_days: 20, tags: {family: base-al2023, version: 1.0.0}}
ssm_parameters:
  - {alias: webp, name: /amictl/channels/web-server/prod, image: web, data_type: "aws:ec2:image"}
  - {alias: basep, name: /amictl/channels/base-al2023/prod, image: base, data_type: "aws:ec2:image"}
"""


def _examples(tmp: Path, pinned: str) -> Path:
    """examples/iac, its literal image id replaced by an image of the sandbox."""
    out = tmp / "iac"
    shutil.copytree(EXAMPLES, out)
    for f in out.rglob("*"):
        if f.is_file():
            f.write_text(f.read_text().replace(PINNED, pinned))
    return out


def test_inventory_and_refs_with_iac_find_the_examples_references(sandbox, tmp_path):
    fl = CliFleet(sandbox, FLEET, tmp_path)
    ids = fl.ids
    code_dir = _examples(tmp_path, ids["pin"])
    tf = code_dir / "terraform"
    code, _out, err = fl.run(
        "inventory", "--iac", str(tf), "--iac", str(code_dir / "cloudformation")
    )
    assert code == 0, err
    assert "infrastructure code: 3 files read" in err
    inv = Store(fl.vars["AMICTL_STATE"]).latest_inventory()[1]  # type: ignore[index]
    iac = {(r.image_id, r.detail.split(" ")[0]) for r in inv.references if r.kind == "iac"}
    assert (ids["pin"], f"{tf}/main.tf:6") in iac
    assert (ids["pin"], f"{tf}/terraform.tfstate") in iac
    assert (ids["pin"], f"{code_dir}/cloudformation/web.yaml:15") in iac
    assert (ids["web"], f"{tf}/main.tf:17") in iac  # follows the channel
    assert (ids["web"], f"{code_dir}/cloudformation/web.yaml:34") in iac
    assert (ids["base"], f"{code_dir}/cloudformation/web.yaml:10") in iac
    assert (ids["bw3"], f"{tf}/main.tf:22") in iac  # data "aws_ami" most_recent
    assert not {ids["bw1"], ids["bw2"]} & {i for i, _ in iac}
    rows = fl.json("refs", ids["pin"], "--iac", str(tf / "main.tf"))
    assert [r["kind"] for r in rows] == ["iac"] and "var.bastion_ami" in rows[0]["detail"]


POLICY = """format: 1
name: iacp
iac: [infra]
rules:
  - name: old
    select: {families: ["*"]}
    keep: {latest: 1}
    retire: {deregister: 0d, snapshots: delete}
"""
PLAIN = "images:\n" + "".join(
    f"  - {{alias: f{i}, name: f-{i}.0.0, age_days: {100 - i}, "
    f"tags: {{family: f, version: '{i}.0.0'}}}}\n"
    for i in (1, 2, 3)
)


class _Run:
    def __init__(self, sandbox: Any, tmp: Path) -> None:
        self.fl = CliFleet(sandbox, PLAIN, tmp)
        self.tmp = tmp
        (tmp / "infra").mkdir()
        (tmp / "policy.yaml").write_text(POLICY)
        self.plan_file = tmp / "plan.json"

    def code(self, image: str | None) -> None:
        """main.tf launches ``image`` (None: it names no image)."""
        ami = f'"{image}"' if image else "null"
        (self.tmp / "infra" / "main.tf").write_text(
            f'resource "aws_instance" "app" {{\n  ami = {ami}\n  instance_type = "t3.micro"\n}}\n'
        )

    def plan(self, *extra: str) -> dict[str, Any]:
        code, _out, err = self.fl.run(
            "plan", "-p", str(self.tmp / "policy.yaml"), "--out", str(self.plan_file), *extra
        )
        assert code == 0, err
        return dict(json.loads(self.plan_file.read_text()))

    def apply(self, *extra: str) -> tuple[int, str]:
        code, out, err = self.fl.run("apply", str(self.plan_file), "--yes", "-o", "json", *extra)
        return code, out + err

    def live(self) -> set[str]:
        ec2 = self.fl.env.client("ec2")
        return {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}


def _deregistering(p: dict[str, Any]) -> set[str]:
    return {a["image_id"] for a in p["actions"] if a["type"] == "deregister"}


def test_an_image_only_the_code_names_is_kept_by_plan_and_apply_then_retired(sandbox, tmp_path):
    run = _Run(sandbox, tmp_path)
    f1, f2 = run.fl.ids["f1"], run.fl.ids["f2"]
    run.code(f1)
    p = run.plan()
    assert _deregistering(p) == {f2}
    reasons = next(d for d in p["decisions"] if d["image_id"] == f1)["reasons"]
    assert any("main.tf:2 aws_instance.app" in r for r in reasons), reasons
    assert p["policy"]["iac"] == [str(tmp_path / "infra")]
    assert run.apply()[0] == 0
    assert f1 in run.live() and f2 not in run.live()
    run.code(None)  # the reference is gone: the same image is retired
    assert _deregistering(run.plan()) == {f1}
    assert run.apply()[0] == 0
    assert f1 not in run.live()


def test_a_reference_written_between_plan_and_apply_keeps_the_image(sandbox, tmp_path):
    run = _Run(sandbox, tmp_path)
    f1, f2 = run.fl.ids["f1"], run.fl.ids["f2"]
    run.code(None)
    assert _deregistering(run.plan()) == {f1, f2}
    run.code(f1)  # after the review: apply re-reads the code
    code, out = run.apply()
    assert code in (0, 4), out
    assert f1 in run.live() and f2 not in run.live()


def test_the_live_twin_retires_it_when_apply_does_not_reread_the_code(
    sandbox, tmp_path, monkeypatch
):
    """The twin of the test above: without apply's re-read the image goes."""
    monkeypatch.setattr(live_mod, "add_iac_references", lambda inv, paths: None)
    run = _Run(sandbox, tmp_path)
    f1 = run.fl.ids["f1"]
    run.code(None)
    run.plan()
    run.code(f1)
    run.apply()
    assert f1 not in run.live()


def test_garbage_between_plan_and_apply_retires_nothing(sandbox, tmp_path):
    run = _Run(sandbox, tmp_path)
    run.code(None)
    assert len(_deregistering(run.plan())) == 2
    (tmp_path / "infra" / "broken.tf").write_text('resource "x" "y" {\n  = 1\n')
    _code, out = run.apply()
    assert "iac: IacUnreadable" in out  # the view is incomplete: nothing decided on it
    assert set(run.fl.ids.values()) <= run.live()


def test_garbage_at_plan_is_bad_input_and_nothing_is_retired(sandbox, tmp_path):
    run = _Run(sandbox, tmp_path)
    (tmp_path / "infra" / "bad.yaml").write_text("Resources:\n  A: [ami-0123456789abcdef0\n")
    code, out, err = run.fl.run("plan", "-p", str(tmp_path / "policy.yaml"), "--out", "x.json")
    assert code == 2 and f"{tmp_path}/infra/bad.yaml:3: not valid YAML" in err, err
    assert "Traceback" not in out + err and not (tmp_path / "x.json").exists()
    code, out, err = run.fl.run("apply", "-p", str(tmp_path / "policy.yaml"), "--yes")
    assert code == 2 and "bad.yaml:3" in err
    code, _, err = run.fl.run("inventory", "--iac", str(tmp_path / "infra"))
    assert code == 2 and "bad.yaml:3" in err
    assert set(run.fl.ids.values()) <= run.live()


def test_an_edited_plan_cannot_drop_the_code_apply_reads(sandbox, tmp_path):
    """The paths are in the plan's policy part, covered by its checksum and signature: a
    plan edited to drop them (and resealed with the public checksum) is refused."""
    from amictl.policy.plan_model import Plan

    run = _Run(sandbox, tmp_path)
    f1 = run.fl.ids["f1"]
    run.code(None)
    p = run.plan("--iac", str(tmp_path / "infra"))
    run.code(f1)
    del p["policy"]["iac"]
    body = {k: v for k, v in p.items() if k not in ("checksum", "signature")}
    p["checksum"] = Plan.checksum_of(body)
    run.plan_file.write_text(json.dumps(p))
    code, out = run.apply()
    assert code == 3 and "not signed" in out
    assert f1 in run.live()


@settings(max_examples=60, deadline=None, database=None)
@given(
    text=st.one_of(
        st.text(max_size=120),
        st.sampled_from(list(GARBAGE.values()))
        .map(lambda t: t[0])
        .flatmap(lambda t: st.integers(0, len(t)).map(lambda n: t[:n])),
    ),
    name=st.sampled_from(["x.tf", "x.yaml", "x.json", "terraform.tfstate", "x.pkr.hcl"]),
)
def test_any_text_is_read_or_refused_as_bad_input_never_a_crash(tmp_path_factory, text, name):
    d = tmp_path_factory.mktemp("fuzz")
    (d / name).write_text(text + " ami-0123456789abcdef0")
    try:
        read_iac([str(d / name)], _inventory(), NOW)
    except IacError as exc:
        assert exc.message.startswith(str(d / name))


def test_terraform_and_packer_in_json_syntax_have_their_lookups_read(tmp_path):
    (tmp_path / "main.tf.json").write_text(
        json.dumps(
            {
                "data": {
                    "aws_ami": {
                        "b": {
                            "most_recent": True,
                            "owners": ["self"],
                            "filter": [{"name": "name", "values": ["batch-worker-*"]}],
                        }
                    },
                    "aws_ami_ids": {"all": {"owners": ["self"], "name_regex": "^app-db-"}},
                }
            }
        )
    )
    (tmp_path / "app.pkr.json").write_text(
        json.dumps(
            {
                "source": {
                    "amazon-ebs": {
                        "app": {
                            "source_ami_filter": {
                                "filters": {"name": "base-*"},
                                "most_recent": True,
                            }
                        }
                    }
                }
            }
        )
    )
    refs = _by_image(read_iac([str(tmp_path)], _inventory(), NOW).references)
    assert sorted(i[-1] for i in refs) == ["3", "4", "6", "7", "8"]
