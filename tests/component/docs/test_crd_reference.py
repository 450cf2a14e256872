"""docs/crd-reference.md is generated from crds/ and must not go stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelplane import docs_gen

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_crd_reference_matches_the_crd_schemas() -> None:
    expected = docs_gen.render(docs_gen.load_crds(REPO_ROOT / "crds"))
    current = (REPO_ROOT / "docs" / "crd-reference.md").read_text()
    assert current == expected, "docs/crd-reference.md is stale: run python -m modelplane.docs_gen"


def test_check_mode_reports_a_stale_reference(tmp_path: Path) -> None:
    stale = tmp_path / "crd-reference.md"
    stale.write_text("# CRD reference\n\nhand-edited\n")
    crds = ["--crds", str(REPO_ROOT / "crds"), "--output", str(stale)]
    assert docs_gen.main([*crds, "--check"]) == 1
    assert docs_gen.main(crds) == 0
    assert docs_gen.main([*crds, "--check"]) == 0


def test_reference_documents_every_spec_field_of_every_crd() -> None:
    crds = docs_gen.load_crds(REPO_ROOT / "crds")
    assert {crd["spec"]["names"]["kind"] for crd in crds} == {
        "ModelDeployment",
        "ExternalModel",
        "RoutingPolicy",
    }
    reference = (REPO_ROOT / "docs" / "crd-reference.md").read_text()
    for crd in crds:
        (version,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
        spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
        for row in docs_gen.field_rows(spec, "spec"):
            assert f"| `{row.path}` |" in reference, row.path


def test_generator_refuses_a_folder_without_crds(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no CustomResourceDefinition"):
        docs_gen.load_crds(tmp_path)
