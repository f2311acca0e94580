"""Policy documents: schema validation with file, line and field; all-or-nothing loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from moorage.policy.documents import PolicyError
from moorage.policy.loader import load_folder
from moorage.policy.units import parse_size

GOOD = """\
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: org, version: 3}
spec:
  mode: enforce
  packs: [baseline]
  resources:
    require: [memory]
    max: {memory: 1g}
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_a_good_folder_loads_with_a_version(tmp_path: Path) -> None:
    write(tmp_path, "org.yaml", GOOD)
    pset = load_folder(tmp_path)
    assert [d.name for d in pset.documents] == ["org"]
    assert pset.documents[0].version == "3" and len(pset.version) == 12
    write(tmp_path, "org.yaml", GOOD.replace("1g", "2g"))
    assert load_folder(tmp_path).version != pset.version


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace("mode: enforce", "mode: enforced"),
            ":5: spec.mode: 'enforced' is not one of enforce, audit",
        ),
        (GOOD.replace("  packs:", "  pack:"), ":6: spec.pack: unknown field"),
        (GOOD.replace("memory: 1g", "memory: lots"), ":9: spec.resources.max.memory"),
        (GOOD.replace("moorage.dev/v1", "v2"), ":1: apiVersion: must be 'moorage.dev/v1'"),
        (
            GOOD.replace("require: [memory]", "require: [memory, disk]"),
            ":8: spec.resources.require[1]: 'disk'",
        ),
        (
            GOOD + "  custom:\n    - {id: x, expr: 'request.User ==', message: m}\n",
            ":11: spec.custom[0].expr: CEL",
        ),
        (GOOD.replace("packs: [baseline]", "packs: [baseline"), "not valid YAML"),
        (
            GOOD.replace("metadata: {name: org, version: 3}", "metadata: {version: 3}"),
            ":3: metadata: 'name' is a required",
        ),
    ],
)
def test_a_bad_file_names_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(PolicyError) as err:
        load_folder(tmp_path)
    assert str(err.value).startswith(str(path))
    assert expected in str(err.value)


def test_duplicate_names_and_empty_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no policy documents"):
        load_folder(tmp_path)
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD)
    with pytest.raises(PolicyError, match="also used in"):
        load_folder(tmp_path)
    with pytest.raises(PolicyError, match="no such policy"):
        load_folder(tmp_path / "missing")


def test_sizes_read_like_docker() -> None:
    assert parse_size("512m") == 512 << 20
    assert parse_size("2g") == 2 << 30
    assert parse_size("1.5GiB") == 3 << 29
    assert parse_size(1024) == 1024
    with pytest.raises(ValueError):
        parse_size("two")


# ------------------------------------------------ compiled state is typed (issue 12, item 7a)
KEYS_DOC = """\
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: keys}
spec:
  custom:
    - {id: no-debug, expr: 'has(request.Env) && request.Env.exists(e, e.startsWith("DEBUG="))', message: 'no debug'}
  rego:
    - {id: authz, file: authz.rego}
"""
DENY_ALL_REGO = "package docker.authz\n\ndefault allow := false\n"


def test_a_document_named_keys_keeps_its_cel_and_rego(tmp_path: Path) -> None:
    from moorage.policy.decision import Facts, Request, evaluate

    write(tmp_path, "keys.yaml", KEYS_DOC)
    write(tmp_path, "authz.rego", DENY_ALL_REGO)
    pset = load_folder(tmp_path)
    (doc,) = pset.documents
    assert doc.name == "keys" and doc.compiled.ready
    assert [r.id for r in doc.compiled.cel] == ["no-debug"] and [r.id for r in doc.compiled.rego] == ["authz"]
    body = {"Image": "busybox:1.36", "Env": ["DEBUG=1"]}
    d = evaluate(pset, Request("container.create", body, user="alice", teams=("payments",)), Facts())
    assert sorted(v.finding.rule for v in d.denials) == ["custom.no-debug", "rego.authz"]


def test_a_document_handed_in_uncompiled_is_compiled_not_dropped(tmp_path: Path) -> None:
    from dataclasses import replace

    from moorage.policy.decision import Facts, Request, evaluate
    from moorage.policy.documents import Compiled
    from moorage.policy.loader import PolicySet

    write(tmp_path, "keys.yaml", KEYS_DOC)
    write(tmp_path, "authz.rego", DENY_ALL_REGO)
    bare = replace(load_folder(tmp_path).documents[0], compiled=Compiled())
    pset = PolicySet((bare,), "v")
    assert pset.documents[0].compiled.ready and len(pset.documents[0].compiled.cel) == 1
    d = evaluate(pset, Request("container.create", {"Image": "x"}, user="alice"), Facts())
    assert [v.finding.rule for v in d.denials] == ["rego.authz"]


# ---------------------------------------------- every value is checked at load (item 7b)
IMAGES = GOOD + "  images:\n    database: {maxAge: 7d}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (IMAGES.replace("maxAge: 7d", "maxAge: 7days"), ":11: spec.images.database.maxAge: not a duration: '7days'"),
        (IMAGES.replace("maxAge: 7d", "maxAge: 0"), ":11: spec.images.database.maxAge: not a duration"),
        (GOOD.replace("memory: 1g", "memory: 1g, cpus: .nan"), ":9: spec.resources.max.cpus: not a CPU count"),
        (GOOD.replace("memory: 1g", "memory: 1g, cpus: .inf"), ":9: spec.resources.max.cpus: not a CPU count"),
        (GOOD + "  quotas: {cpus: .nan}\n", ":10: spec.quotas.cpus: not a CPU count"),
        (GOOD + "  network:\n    publish: {ports: ['9000-8000']}\n", ":11: spec.network.publish.ports[0]: not a port"),
        (GOOD + "  network:\n    publish: {ports: ['70000']}\n", ":11: spec.network.publish.ports[0]: not a port"),
        (GOOD + "  network:\n    publish: {hostIPs: [localhost]}\n", "spec.network.publish.hostIPs[0]: not an IP"),
        (GOOD + "  network:\n    join: ['{teams}-*']\n", ":11: spec.network.join[0]: unknown placeholder"),
        (GOOD + "  images:\n    registries: ['https://127.0.0.1:5000']\n", "spec.images.registries[0]: not a registry"),
        (GOOD + "  images:\n    packages: {forbidden: ['pkg:']}\n", "spec.images.packages.forbidden[0]: not a package"),
        (GOOD + "  plugins: {privileges: [mount]}\n", ":10: spec.plugins.privileges[0]: not a plugin privilege"),
        (GOOD + "  plugins: {privileges: ['root=/']}\n", "spec.plugins.privileges[0]: not a plugin privilege"),
        (GOOD + "  placement:\n    classes: {pci: [node.labels.pci]}\n", "spec.placement.classes.pci[0]: not a placement"),
        (GOOD + "  runtime: {seccompProfiles: [abc]}\n", ":10: spec.runtime.seccompProfiles[0]"),
    ],
)  # fmt: skip
def test_values_are_validated_at_load_with_file_line_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(PolicyError) as err:
        load_folder(tmp_path)
    assert str(err.value).startswith(str(path)), err.value
    assert expected in str(err.value), err.value


def test_good_values_load_and_the_duration_reads_as_loaded(tmp_path: Path) -> None:
    from moorage.policy.decision import Facts, Request, evaluate
    from moorage.policy.rules.images import ImageFacts

    write(tmp_path, "ok.yaml", IMAGES.replace("    require: [memory]\n", ""))
    write(tmp_path, "more.yaml", GOOD.replace("org", "more").replace("mode: enforce", "mode: audit")
          + "  quotas: {memory: 2G, cpus: 0.5}\n  plugins: {privileges: ['mount=/srv']}\n")  # fmt: skip
    pset = load_folder(tmp_path)
    req = Request("container.create", {"Image": "busybox:1.36"}, user="alice", teams=("payments",))
    old = ImageFacts(ref="busybox:1.36", digest="sha256:" + "a" * 64, db_age=8 * 86400.0, scanned=True)
    fresh = ImageFacts(ref="busybox:1.36", digest="sha256:" + "a" * 64, db_age=6 * 86400.0, scanned=True)
    stale = evaluate(pset, req, Facts(image_reports={"busybox:1.36": old}))
    assert [v.finding.rule for v in stale.denials] == ["images.database-stale"]
    assert "older than 7d" in stale.denials[0].finding.message
    assert evaluate(pset, req, Facts(image_reports={"busybox:1.36": fresh})).allowed


def test_durations_cpus_and_digests_parse() -> None:
    from moorage.policy.units import parse_cpus, parse_digest, parse_duration

    assert parse_duration("7d") == 7 * 86400 and parse_duration("12h") == 43200 and parse_duration(90) == 90
    assert parse_cpus("0.5") == 0.5
    assert parse_digest("sha256:" + "0" * 64)
    for bad, parse in (("7days", parse_duration), (True, parse_duration), (0, parse_cpus),
                       ("sha256:xyz", parse_digest)):  # fmt: skip
        with pytest.raises(ValueError):
            parse(bad)


def test_shared_objects_are_declared_by_policy(tmp_path: Path) -> None:
    write(
        tmp_path,
        "shared.yaml",
        """\
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: shared}
spec:
  shared: {networks: [tools], volumes: [cache], labels: [com.example.shared=yes]}
---
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: more}
spec:
  shared: {networks: [tools, proxy]}
""",
    )
    pset = load_folder(tmp_path)
    assert pset.shared("networks") == ("tools", "proxy")
    assert pset.shared("volumes") == ("cache",)
    assert pset.shared("labels") == ("com.example.shared=yes",)
    write(
        tmp_path,
        "shared.yaml",
        "apiVersion: moorage.dev/v1\nkind: Policy\nmetadata: {name: s}\nspec:\n  shared: {containers: [x]}\n",
    )
    with pytest.raises(PolicyError):
        load_folder(tmp_path)


def test_a_document_summary_is_json_as_written(tmp_path: Path) -> None:
    # GET /moorage/v1/policy answers these; a typed scope must still dump as a mapping
    import json

    from moorage.policy.loader import builtin_set, load_folder

    (tmp_path / "p.yaml").write_text(
        "apiVersion: moorage.dev/v1\nkind: Policy\nmetadata: {name: p, version: '3'}\n"
        "spec:\n  scope: {teams: [payments], labels: {tier: prod}}\n  packs: [baseline]\n"
    )
    summary = load_folder(tmp_path).documents[0].summary()
    assert json.loads(json.dumps(summary)) == {
        "name": "p", "version": "3", "mode": "enforce", "source": str(tmp_path / "p.yaml"),
        "scope": {"teams": ["payments"], "labels": {"tier": "prod"}},
    }  # fmt: skip
    assert all(json.dumps(d.summary()) for d in builtin_set().documents)
