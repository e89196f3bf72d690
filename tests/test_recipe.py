"""Recipes: the examples validate, errors name file:line and the key, the schema is generated."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from amictl.cli.main import cli
from amictl.creation.recipe import TOP, json_schema, load_recipe, parse_recipe_text, parse_timeout
from amictl.errors import InputError, InputErrors

EXAMPLES = sorted(
    (Path(__file__).resolve().parents[1] / "examples" / "recipes").glob("*.recipe.yaml")
)

GOOD = """\
format: 1
family: web
source: {catalog: al2023}
provision:
  - {name: a, shell: echo a}
tests:
  steps:
    - {name: t, shell: "true", timeout: 30s}
promote: staging
"""


def test_there_are_two_examples():
    assert len(EXAMPLES) == 2


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_and_match_the_schema(path):
    r = load_recipe(str(path))
    assert r.family and r.provision and r.tests and r.promote
    jsonschema.validate(yaml.safe_load(path.read_text()), json_schema())
    res = CliRunner().invoke(cli, ["recipe", "validate", str(path), "-o", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["family"] == r.family


def test_example_details():
    web = load_recipe(str(next(p for p in EXAMPLES if p.name.startswith("web"))))
    assert web.source_ref == "catalog:al2023/x86_64"
    patch = web.provision[0]
    assert patch.document == "AWS-RunPatchBaseline" and patch.timeout == 1800
    assert patch.parameters == {"Operation": ["Install"], "RebootOption": ["NoReboot"]}
    script = next(s for s in web.provision if s.kind == "script")
    assert any("healthz" in c for c in script.parameters["commands"])
    assert script.parameters["executionTimeout"] == ["300"]
    assert web.copy_to == ["eu-west-1"] and web.encrypted and web.max_age_days == 30
    hard = load_recipe(str(next(p for p in EXAMPLES if p.name.startswith("hardened"))))
    assert hard.source_ref == "base-al2023@prod" and hard.promote == "staging"
    assert [t.name for t in hard.tests] == ["root-login-off", "password-login-off"]


@pytest.mark.parametrize(
    "edit,line,key,words",
    [
        (("family: web", "family: Web_1"), 2, "family", "not a family name"),
        (
            ("source: {catalog: al2023}", "source: {catalog: al2023, image: ami-12345678}"),
            3,
            "source",
            "exactly one",
        ),
        (
            ("source: {catalog: al2023}", "source: {catalog: nope}"),
            3,
            "source.catalog",
            "not a catalog base",
        ),
        (
            ("{name: a, shell: echo a}", "{name: a, shell: echo a, document: X-Y}"),
            5,
            "provision[0]",
            "exactly one",
        ),
        (
            ("{name: a, shell: echo a}", "{name: a, shel: echo a}"),
            5,
            "provision[0].shel",
            "unknown key",
        ),
        (("timeout: 30s", "timeout: 3 days"), 8, "tests.steps[0].timeout", "not a timeout"),
        (("timeout: 30s", "timeout: 49h"), 8, "tests.steps[0].timeout", "between"),
        (
            ("{name: a, shell: echo a}", "{name: a, script: missing.sh}"),
            5,
            "provision[0].script",
            "cannot read",
        ),
        (
            ("promote: staging", "promote: staging\nimage: {kms_key: k}"),
            10,
            "image.kms_key",
            "encrypted",
        ),
        (
            ("promote: staging", "promote: staging\nimage: {name: fixed-name}"),
            10,
            "image.name",
            "{version}",
        ),
        (
            ("promote: staging", "promote: staging\nimage: {copy_to: [mars]}"),
            10,
            "image.copy_to[0]",
            "region",
        ),
        (
            ("promote: staging", "promote: staging\nimage: {share_with: ['12']}"),
            10,
            "image.share_with[0]",
            "account",
        ),
        (("format: 1", "format: 2"), 1, "format", "only format 1"),
    ],
)
def test_errors_name_file_line_and_key(edit, line, key, words):
    text = GOOD.replace(*edit)
    with pytest.raises(InputError) as e:
        parse_recipe_text(text, "r.yaml")
    assert e.value.file == "r.yaml" and e.value.line == line, e.value.message
    assert e.value.key == key and words in e.value.message


def test_promote_needs_tests_and_step_names_are_unique():
    with pytest.raises(InputError) as e:
        parse_recipe_text(
            GOOD.replace('tests:\n  steps:\n    - {name: t, shell: "true", timeout: 30s}\n', ""),
            "r.yaml",
        )
    assert e.value.key == "promote" and "test" in e.value.message
    dup = GOOD.replace(
        "  - {name: a, shell: echo a}\n",
        "  - {name: a, shell: echo a}\n  - {name: a, shell: echo b}\n",
    )
    with pytest.raises(InputError) as e:
        parse_recipe_text(dup, "r.yaml")
    assert e.value.line == 6 and e.value.key == "provision[1].name"


def test_cli_validate_exit_2_and_schema(tmp_path):
    bad = tmp_path / "bad.recipe.yaml"
    bad.write_text(GOOD.replace("family: web", "family: web\ncolour: red"))
    res = CliRunner().invoke(cli, ["recipe", "validate", str(bad)])
    assert isinstance(res.exception, InputError) and res.exception.exit_code == 2
    assert f"{bad}:3: colour: unknown key" in res.exception.message
    res = CliRunner().invoke(cli, ["recipe", "schema"])
    schema = json.loads(res.stdout)
    # generated from the registry: every top-level key, with its help as description
    assert set(schema["properties"]) == {c.name.rstrip("[]") for c in TOP.children}
    assert schema["required"] == ["format", "family", "source"]
    step = schema["properties"]["provision"]["items"]
    assert step["properties"]["timeout"]["default"] == "10m"
    jsonschema.validate(yaml.safe_load(GOOD), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            yaml.safe_load(GOOD.replace("family: web", "family: web\ncolour: red")), schema
        )


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=200_000), st.sampled_from(["", "s", "m", "h"]))
def test_timeouts_are_seconds_within_bounds(n, unit):
    seconds = n * {"": 1, "s": 1, "m": 60, "h": 3600}[unit]
    if 1 <= seconds <= 48 * 3600:
        assert parse_timeout(f"{n}{unit}") == seconds
    else:
        with pytest.raises(ValueError):
            parse_timeout(f"{n}{unit}")


def test_every_recipe_key_is_documented():
    from amictl.policy.schema import Key

    doc = (Path(__file__).resolve().parents[1] / "docs" / "bake.md").read_text()

    def keys(k: Key) -> list[str]:
        out = []
        for c in k.children:
            out.append(c.name.rstrip("[]"))
            out.extend(keys(c))
        return out

    missing = [k for k in keys(TOP) if f"{k}:" not in doc]
    assert not missing, f"docs/bake.md does not show {missing}"


def test_every_key_level_error_of_a_recipe_is_reported_at_once():
    text = GOOD.replace("family: web", "family: web\ncolour: red").replace(
        "timeout: 30s", "timeout: soon"
    )
    with pytest.raises(InputErrors) as e:
        parse_recipe_text(text, "r.yaml")
    assert [(x.line, x.key) for x in e.value.errors] == [
        (3, "colour"),
        (9, "tests.steps[0].timeout"),
    ], e.value.message
