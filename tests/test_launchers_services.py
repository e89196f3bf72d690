"""Issue 26, the other services that launch an image: CloudFormation stacks, Elastic
Beanstalk environments, EC2 Image Builder recipes and distribution configurations, and the
images Image Builder, DLM or AWS Backup manage.

Each kind, end to end against the sandbox: an image that kind alone references is kept by
``plan`` and by ``apply`` (also when the reference appears between the two), its reason
names the resource, and the same image is retired once the reference is gone. The outcome
is read from the sandbox's EC2 (does the image still exist), not from amictl's report.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from amictl.apply.executor import ApplyOptions, execute, prepare
from amictl.cli.main import cli
from amictl.inventory import scan
from amictl.inventory.kinds import COLLECTORS
from amictl.model import IN_USE_KINDS
from amictl.policy import parse_policy_text, plan
from amictl.state.store import Store
from conftest import Env
from launcher_makers import beanstalk_environment

FLEET = "images:\n" + "".join(
    f"  - {{alias: f{i}, name: f-{i}.0.0, age_days: {100 - i}, "
    f"tags: {{family: f, version: '{i}.0.0'}}}}\n"
    for i in (1, 2, 3)
)
POLICY = """format: 1
name: svc
rules:
  - name: old
    select: {families: ["*"]}
    keep: {latest: 1}
    retire: {deregister: 0d, snapshots: keep}
"""
COMPONENT = "arn:aws:imagebuilder:us-east-1:aws:component/update-linux/x.x.x"


# Each "add" makes the kind reference ``image`` and returns the resource's id (ARN);
# its "remove" takes the reference away again.
def _stack_param(env: Env, image: str) -> str:
    body = {
        "Parameters": {"Ami": {"Type": "AWS::EC2::Image::Id"}},
        "Resources": {"H": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
    }
    return str(
        env.client("cloudformation").create_stack(
            StackName="web",
            TemplateBody=json.dumps(body),
            Parameters=[{"ParameterKey": "Ami", "ParameterValue": image}],
        )["StackId"]
    )


def _stack_template(env: Env, image: str) -> str:
    body = (  # YAML with the short forms: parsed by cfn-lint's decoder
        "Parameters:\n  Env: {Type: String, Default: prod}\n"
        "Mappings:\n  Images:\n    us-east-1: {Base: " + image + "}\n"
        "Resources:\n  H:\n    Type: AWS::CloudFormation::WaitConditionHandle\n"
        "    Metadata:\n      Name: !Sub 'web-${Env}'\n      Env: !Ref Env\n"
    )
    return str(
        env.client("cloudformation").create_stack(StackName="web", TemplateBody=body)["StackId"]
    )


def _stack_gone(env: Env, rid: str) -> None:
    env.client("cloudformation").delete_stack(StackName=rid)


def _beanstalk(env: Env, image: str) -> str:
    return beanstalk_environment(env, image)


def _beanstalk_gone(env: Env, rid: str) -> None:
    env.client("elasticbeanstalk").terminate_environment(EnvironmentName="shop-prod")


def _image_recipe(env: Env, image: str) -> str:
    return str(
        env.client("imagebuilder").create_image_recipe(
            name="web",
            semanticVersion="1.0.0",
            parentImage=image,
            components=[{"componentArn": COMPONENT}],
        )["imageRecipeArn"]
    )


def _image_recipe_gone(env: Env, rid: str) -> None:
    env.client("imagebuilder").delete_image_recipe(imageRecipeArn=rid)


def _container_recipe(env: Env, image: str) -> str:
    return str(
        env.client("imagebuilder").create_container_recipe(
            containerType="DOCKER",
            name="web",
            semanticVersion="1.0.0",
            parentImage="amazonlinux:2023",
            components=[{"componentArn": COMPONENT}],
            instanceConfiguration={"image": image},
            dockerfileTemplateData="FROM {{{ imagebuilder:parentImage }}}",
            targetRepository={"service": "ECR", "repositoryName": "web"},
        )["containerRecipeArn"]
    )


def _container_recipe_gone(env: Env, rid: str) -> None:
    env.client("imagebuilder").delete_container_recipe(containerRecipeArn=rid)


def _distribution(env: Env, image: str) -> str:
    return str(
        env.client("imagebuilder").create_distribution_configuration(
            name="web",
            distributions=[
                {
                    "region": "us-east-1",
                    "amiDistributionConfiguration": {"amiTags": {"base-image": image}},
                    "launchTemplateConfigurations": [{"launchTemplateId": "lt-0123456789abcdef0"}],
                }
            ],
        )["distributionConfigurationArn"]
    )


def _distribution_gone(env: Env, rid: str) -> None:
    env.client("imagebuilder").delete_distribution_configuration(distributionConfigurationArn=rid)


Maker = Callable[[Env, str], str]
KINDS: dict[str, tuple[str, Maker, Callable[[Env, str], None]]] = {
    "stack-parameter": ("cloudformation-stack", _stack_param, _stack_gone),
    "stack-template": ("cloudformation-stack", _stack_template, _stack_gone),
    "beanstalk": ("beanstalk-environment", _beanstalk, _beanstalk_gone),
    "image-recipe": ("imagebuilder-recipe", _image_recipe, _image_recipe_gone),
    "container-recipe": ("imagebuilder-recipe", _container_recipe, _container_recipe_gone),
    "distribution": ("imagebuilder-distribution", _distribution, _distribution_gone),
}


def _plan(env: Env, policy: str = POLICY) -> Any:
    return plan(
        scan(env.connector()), parse_policy_text(policy, "svc.yaml"), dt.datetime.now(dt.UTC)
    )


def _apply(env: Env, p: Any, tmp_path: Any) -> None:
    conn = env.connector()
    store = Store(f"sqlite:///{tmp_path}/svc-{env.account}.db")
    opts = ApplyOptions(max_destroy=100, max_share=1.0, allow_whole_family=True, workers=1)
    execute(conn, store, prepare(conn, p, opts, store), opts)


def _exists(env: Env, image: str) -> bool:
    ec2 = env.client("ec2")
    return bool(
        ec2.describe_images(Owners=["self"], Filters=[{"Name": "image-id", "Values": [image]}])[
            "Images"
        ]
    )


def _deregisters(p: Any) -> set[str]:
    return {a.image_id for a in p.actions if a.type == "deregister"}


@pytest.mark.parametrize("case", sorted(KINDS))
def test_a_reference_of_each_kind_keeps_the_image_in_plan_and_apply(env, tmp_path, case):
    kind, add, remove = KINDS[case]
    assert kind in IN_USE_KINDS
    ids = env.load(FLEET)["aliases"]
    old, mid = ids["f1"], ids["f2"]
    before = _plan(env)
    assert {old, mid} <= _deregisters(before)

    rid = add(env, old)  # appears between plan and apply
    _apply(env, before, tmp_path)
    assert _exists(env, old), f"{case}: apply retired an image {kind} {rid} launches"
    assert not _exists(env, mid)  # the apply did run: the unreferenced one went

    again = _plan(env)
    assert old not in _deregisters(again)
    decision = next(d for d in again.decisions if d.image_id == old)
    assert decision.verdict == "keep"
    assert any(rid in r and r.startswith("in use") for r in decision.reasons), decision.reasons
    _apply(env, again, tmp_path)
    assert _exists(env, old)

    remove(env, rid)  # the reference is gone: the same image retires
    last = _plan(env)
    assert old in _deregisters(last)
    _apply(env, last, tmp_path)
    assert not _exists(env, old)


def test_an_ssm_typed_stack_parameter_points_at_the_parameter_not_the_stack(env):
    ids = env.load(FLEET + "ssm_parameters: [{alias: p, name: /golden/web, image: f1}]\n")[
        "aliases"
    ]
    body = {
        "Parameters": {
            "Ami": {
                "Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
                "Default": "/golden/web",
            }
        },
        "Resources": {"H": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
    }
    cfn = env.client("cloudformation")
    cfn.create_stack(StackName="ssm", TemplateBody=json.dumps(body))
    param = cfn.describe_stacks(StackName="ssm")["Stacks"][0]["Parameters"][0]
    assert param["ParameterValue"] == "/golden/web" and param["ResolvedValue"] == ids["f1"]
    refs = scan(env.connector()).refs(ids["f1"])
    assert {r.kind for r in refs} == {"ssm-parameter"}


def test_fleet_keys_seed_every_kind_and_refs_shows_them(env, tmp_path):
    ids = env.load(
        FLEET + "cloudformation_stacks:\n"
        "  - {alias: s, name: web, image: f1, images: [f1, f2], template_image: f2}\n"
        "beanstalk_environments: [{alias: b, name: shop-prod, image: f1}]\n"
        "image_recipes: [{alias: r, name: web, image: f1}]\n"
        "container_recipes: [{alias: c, name: svc, image: f2}]\n"
    )["aliases"]
    inv = scan(env.connector())
    got = {(r.kind, r.id, r.image_id) for r in inv.references}
    assert {
        ("cloudformation-stack", ids["s"], ids["f1"]),
        ("cloudformation-stack", ids["s"], ids["f2"]),
        ("beanstalk-environment", ids["b"], ids["f1"]),
        ("imagebuilder-recipe", ids["r"], ids["f1"]),
        ("imagebuilder-recipe", ids["c"], ids["f2"]),
    } <= got
    res = CliRunner().invoke(
        cli, [*env.cli_args(), "refs", ids["f1"], "-o", "json"], env=env.cli_env(tmp_path)
    )
    assert res.exit_code == 0, res.output
    assert {"cloudformation-stack", "beanstalk-environment", "imagebuilder-recipe"} <= {
        r["kind"] for r in json.loads(res.stdout)
    }
    # ls --unused, the cost model and show count them as uses like every launcher
    res = CliRunner().invoke(
        cli, [*env.cli_args(), "ls", "--unused", "-o", "json"], env=env.cli_env(tmp_path)
    )
    assert res.exit_code == 0, res.output
    assert {r["image_id"] for r in json.loads(res.stdout)} == {ids["f3"]}
    from amictl.cost.model import in_use

    assert [in_use(inv, i) for i in sorted(inv.images, key=lambda i: i.name)] == [True, True, False]


@pytest.mark.parametrize(
    "kind, service",
    [
        ("cloudformation-stacks", "cloudformation"),
        ("beanstalk-environments", "elasticbeanstalk"),
        ("imagebuilder", "imagebuilder"),
    ],
)
def test_access_denied_on_a_new_kind_retires_nothing_there(env, sandbox, tmp_path, kind, service):
    ids = env.load(FLEET)["aliases"]
    sandbox.set_faults(
        [{"service": service, "code": "AccessDeniedException", "status": 403, "message": "no"}]
    )
    try:
        p = _plan(env)
        _apply(env, _plan_without_faults(env, sandbox, service), tmp_path)
    finally:
        sandbox.set_faults([])
    assert not _deregisters(p)
    decision = next(d for d in p.decisions if d.image_id == ids["f1"])
    assert any(kind in r and "incomplete" in r for r in decision.reasons), decision.reasons
    assert _exists(env, ids["f1"]) and _exists(env, ids["f2"])  # apply's live view blocked too


def _plan_without_faults(env: Env, sandbox: Any, service: str) -> Any:
    """A plan made while the service could be read; apply then meets the AccessDenied."""
    sandbox.set_faults([])
    p = _plan(env)
    assert _deregisters(p)
    sandbox.set_faults(
        [{"service": service, "code": "AccessDeniedException", "status": 403, "message": "no"}]
    )
    return p


MANAGED = {
    "imagebuilder": {
        "CreatedBy": "EC2 Image Builder",
        "Ec2ImageBuilderArn": "arn:aws:imagebuilder:us-east-1:111122223333:image/web/1.0.0/1",
    },
    "dlm": {"aws:dlm:lifecycle-policy-id": "policy-0123456789abcdef0"},
    "backup": {"aws:backup:source-resource": "i-0123456789abcdef0"},
}


@pytest.mark.parametrize("service", sorted(MANAGED))
def test_a_managed_image_retires_only_under_a_rule_that_adopts_it(env, tmp_path, service):
    ids = env.load(FLEET)["aliases"]
    old = ids["f1"]
    env.client("ec2").create_tags(
        Resources=[old], Tags=[{"Key": k, "Value": v} for k, v in MANAGED[service].items()]
    )
    p = _plan(env)
    assert old not in _deregisters(p) and ids["f2"] in _deregisters(p)
    reasons = next(d for d in p.decisions if d.image_id == old).reasons
    assert any(r.startswith("managed by") and service in r for r in reasons), reasons
    _apply(env, p, tmp_path)
    assert _exists(env, old)

    adopting = POLICY.replace(
        'select: {families: ["*"]}', f'select: {{families: ["*"], managed: [{service}]}}'
    )
    p = _plan(env, adopting)
    assert old in _deregisters(p)
    action = next(a for a in p.actions if a.image_id == old and a.type == "deregister")
    assert any("managed by" in r and "adopted by rule old" in r for r in action.reasons)
    _apply(env, p, tmp_path)
    assert not _exists(env, old)


def test_managed_is_a_policy_key_with_its_services():
    from amictl.errors import InputError

    bad = POLICY.replace('select: {families: ["*"]}', 'select: {families: ["*"], managed: [ami]}')
    with pytest.raises(InputError, match="managed"):
        parse_policy_text(bad, "p.yaml")
    res = CliRunner().invoke(cli, ["policy", "schema"])
    assert res.exit_code == 0
    assert '"imagebuilder"' in res.stdout and '"managed"' in res.stdout


def test_iam_policy_lists_every_new_read_and_the_scan_makes_no_other_call(env):
    from amictl import iam

    res = CliRunner().invoke(cli, ["iam-policy", "inventory", "plan"])
    actions = {a for st in json.loads(res.stdout)["Statement"] for a in st["Action"]}
    for kind in ("cloudformation-stacks", "beanstalk-environments", "imagebuilder"):
        assert set(COLLECTORS[kind].permissions) <= actions
    env.load(
        FLEET + "cloudformation_stacks: [{alias: s, image: f1}]\n"
        "beanstalk_environments: [{alias: b, image: f1}]\n"
        "image_recipes: [{alias: r, image: f1}]\n"
    )
    _distribution(env, "ami-0123456789abcdef0")
    conn = env.connector()
    scan(conn)
    allowed = iam.permissions("plan")
    calls = {c for c in conn.counter.snapshot() if not c.startswith("sts.")}
    uncovered = {c for c in calls if iam.iam_action(c) not in allowed}
    assert not uncovered
    assert {"cloudformation.GetTemplate", "imagebuilder.GetDistributionConfiguration"} <= calls


def test_audit_reports_a_policy_adopting_what_another_service_retires(env, tmp_path):
    ids = env.load(FLEET)["aliases"]
    env.client("ec2").create_tags(
        Resources=[ids["f1"]], Tags=[{"Key": k, "Value": v} for k, v in MANAGED["dlm"].items()]
    )
    adopting = tmp_path / "adopt.yaml"
    adopting.write_text(
        POLICY.replace('select: {families: ["*"]}', 'select: {families: ["*"], managed: [dlm]}')
    )
    plain = tmp_path / "plain.yaml"
    plain.write_text(POLICY)
    found = {}
    for name, path in (("adopt", adopting), ("plain", plain)):
        res = CliRunner().invoke(
            cli,
            [*env.cli_args(), "audit", "--policy", str(path), "-o", "json"],
            env=env.cli_env(tmp_path),
        )
        assert res.exit_code in (0, 4), res.output
        found[name] = [
            f for f in json.loads(res.stdout)["findings"] if f["check"] == "managed-overlap"
        ]
    assert [f["resource"] for f in found["adopt"]] == [ids["f1"]]
    assert "policy-0123456789abcdef0" in found["adopt"][0]["detail"]
    assert found["plain"] == []


def test_a_second_load_of_the_same_stack_is_refused_whole(env):
    from amictl.errors import InputError

    text = FLEET + "cloudformation_stacks: [{alias: s, name: web, image: f1}]\n"
    env.load(text)
    with pytest.raises(InputError, match="CloudFormation stack named 'web' already exists"):
        env.load(text.replace("f1", "g1").replace("f2", "g2").replace("f3", "g3"))


@pytest.mark.parametrize(
    "text, where",
    [
        ("cloudformation_stacks: [{alias: s, image: nope}]", "cloudformation_stacks[0].image"),
        ("cloudformation_stacks: [{alias: s, images: [f1, nope]}]", "images"),
        ("beanstalk_environments: [{alias: b}]", "beanstalk_environments[0]"),
        ("image_recipes: [{alias: r, image: f1, parent: x}]", "parent"),
        ("container_recipes: [{alias: c, image: f1, region: eu-west-1}]", "region"),
    ],
)
def test_the_fleet_keys_are_validated_with_file_line_and_key(text, where):
    from amictl.errors import InputError
    from amictl.sandbox import fleet

    with pytest.raises(InputError) as exc:
        fleet.parse_text(FLEET + text + "\n", "f.yaml")
    assert "f.yaml:" in str(exc.value) and where in str(exc.value), str(exc.value)
