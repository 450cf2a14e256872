"""Real inference engines, each from its own venv under .cache/engines (`make test-engines`).

These start vLLM and Triton for real and take minutes, so they run only when selected with
`-m engines`; a plain `pytest tests` skips them. `tools/engines/setup-venvs.sh` builds the venvs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINES = REPO / ".cache" / "engines"
TOOLS = REPO / "tools" / "engines"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "engines" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="starts real engines: run with make test-engines")
    for item in items:
        if item.get_closest_marker("engines"):
            item.add_marker(skip)


def engine_python(name: str) -> Path:
    python = ENGINES / name / "bin" / "python"
    if not python.is_file():
        pytest.fail(f"{python} is missing: run tools/engines/setup-venvs.sh {name}")
    return python


@pytest.fixture(scope="session")
def engines_dir() -> Path:
    return ENGINES


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    return engine_python("vllm")


@pytest.fixture(scope="session")
def triton_python() -> Path:
    return engine_python("triton")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory, vllm_python: Path) -> Path:
    """A tiny LLaMA with random weights and a local tokenizer, written by vLLM's torch."""
    target = tmp_path_factory.mktemp("tiny-llama")
    subprocess.run(
        [str(vllm_python), "-I", str(TOOLS / "make_tiny_llama.py"), str(target)],
        check=True,
        cwd=target,
        timeout=300,
    )
    return target
