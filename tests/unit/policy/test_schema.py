"""The typed models and the JSON Schema generated from them agree, checked against an
outside validator (jsonschema) on the shipped examples and on bad documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from moorage.policy.documents import PolicyError, parse_document
from moorage.policy.schema import SCHEMA, ImagesSpec, PolicySpec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "policies"
GOOD = """\
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: org}
spec:
  packs: [baseline]
  placement: {classes: {pci: ['node.labels.pci==yes']}, teams: {payments: pci}}
  network: {publish: {hostIPs: [127.0.0.1], ports: ['8000-8999']}}
"""


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(SCHEMA)


def test_the_schema_is_valid_and_published_with_its_id() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$id"] == "https://moorage.dev/schemas/policy-v1.json"
    assert SCHEMA["title"] == "Moorage policy document"
    assert '"null"' not in str(SCHEMA).replace("'", '"')  # absent keys are left out, never null


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_the_examples_pass_both_the_models_and_the_schema(path: Path) -> None:
    text = path.read_text()
    assert parse_document(text, str(path), path.parent)
    for data in yaml.safe_load_all(text):
        if data is not None:
            _validator().validate(data)


@pytest.mark.parametrize(
    "change",
    [
        {"spec": {"mode": "enforced"}},
        {"spec": {"pack": ["baseline"]}},
        {"spec": {"quotas": {"containers": -1}}},
        {"spec": {"scope": {"labels": {"a": 1}}}},
        {"spec": {"images": {"signatures": {"keys": []}}}},
        {"spec": {"resources": {"max": {"memory": "lots"}}}},
        {"spec": {"network": {"publish": {"ports": ["abc"]}}}},
        {"metadata": {"name": "Org"}},
        {"kind": "Pol"},
    ],
)
def test_what_the_schema_refuses_the_loader_refuses(change: dict[str, Any]) -> None:
    data = yaml.safe_load(GOOD)
    for key, value in change.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    assert list(_validator().iter_errors(data))
    with pytest.raises(PolicyError):
        parse_document(yaml.safe_dump(data), "p.yaml")


def test_a_mapping_key_is_named_in_the_error() -> None:
    text = GOOD.replace("teams: {payments: pci}", "teams: {payments: pci, ops: 3}")
    with pytest.raises(
        PolicyError, match=r"p\.yaml:6: spec\.placement\.teams\.ops: 3 is not of type 'string'"
    ):
        parse_document(text, "p.yaml")


def test_null_is_refused_with_its_line() -> None:
    with pytest.raises(PolicyError, match=r"p\.yaml:7: spec\.network\.publish: null is not allowed"):
        parse_document(GOOD.replace("{hostIPs: [127.0.0.1], ports: ['8000-8999']}", "null"), "p.yaml")


def test_an_empty_section_counts_as_absent() -> None:
    assert not ImagesSpec() and ImagesSpec(forbid_latest=False)
    assert not PolicySpec() and PolicySpec(packs=[])


def test_a_key_that_is_not_a_string_is_named() -> None:
    text = GOOD.replace("teams: {payments: pci}", "teams: {1: pci}")
    with pytest.raises(
        PolicyError, match=r"p\.yaml:6: spec\.placement\.teams: every key here must be a string"
    ):
        parse_document(text, "p.yaml")
