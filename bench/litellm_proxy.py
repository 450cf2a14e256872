"""LiteLLM's own proxy, the comparison point, in its own venv under `.cache/litellm-proxy`.

`litellm[proxy]` pins a dependency set (FastAPI, pydantic, ...) that must not leak into the
project venv, so it gets a venv of its own, installed with `uv` (plain pip backtracks for many
minutes on this set). The version is pinned: the reference figures were measured with it.

It is configured like modelplane in the benchmark: the same two backends (a self-hosted LLaMA
behind vLLM's OpenAI API and GPT-4o), both pointing at the benchmark upstream, in one model
group `auto` with LiteLLM's simplest routing strategy (`simple-shuffle`); no database, no cache,
no callbacks.

Run: `python -m bench.litellm_proxy --setup` (create or update the venv), or
`python -m bench.litellm_proxy --port P --upstream http://127.0.0.1:U` (serve).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from bench.harness import REPO_ROOT, RESULTS_DIR, ServerProcess, bench_env

LITELLM_PROXY_REQUIREMENT = "litellm[proxy]==1.106.2"
# The proxy imports its OpenTelemetry plumbing on every request; without the SDK the import fails
# each time, uncached, and costs ~40% of its CPU. Installing it measures LiteLLM at its best.
PROXY_EXTRAS = ("opentelemetry-sdk",)
VENV_DIR = REPO_ROOT / ".cache" / "litellm-proxy"
MASTER_KEY = "sk-bench-master-key"
STAMP = VENV_DIR / ".installed"


def venv_python() -> Path:
    return VENV_DIR / "bin" / "python"


def find_uv() -> str:
    beside_python = Path(sys.executable).parent / "uv"
    if beside_python.exists():
        return str(beside_python)
    on_path = shutil.which("uv")
    if on_path is None:
        raise RuntimeError("uv not found: run `make venv` (it installs uv into .venv)")
    return on_path


def ensure_venv() -> Path:
    """Create the proxy venv once; later calls only check the stamp (it names the requirement)."""
    wanted = " ".join((LITELLM_PROXY_REQUIREMENT, *PROXY_EXTRAS))
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return venv_python()
    if not venv_python().exists():
        # A fresh interpreter outside any venv, run from a neutral directory: the repo's
        # top-level `operator/` folder would shadow the stdlib module of the same name.
        base_python = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base_python, "-m", "venv", str(VENV_DIR)], check=True, cwd="/")
    subprocess.run(
        [
            *(find_uv(), "pip", "install", "--quiet", "--python", str(venv_python())),
            *(LITELLM_PROXY_REQUIREMENT, *PROXY_EXTRAS),
        ],
        check=True,
        cwd="/",
    )
    STAMP.write_text(wanted + "\n")
    return venv_python()


def proxy_config(upstream_base_url: str) -> dict[str, object]:
    api_base = upstream_base_url.rstrip("/") + "/v1"
    return {
        "model_list": [
            {
                "model_name": "auto",
                "litellm_params": {
                    "model": "hosted_vllm/llama-3-8b",
                    "api_base": api_base,
                    "api_key": "unused",
                },
                "model_info": {"id": "llama-3-8b"},
            },
            {
                "model_name": "auto",
                "litellm_params": {
                    "model": "openai/gpt-4o",
                    "api_base": api_base,
                    "api_key": "sk-bench-upstream",
                },
                "model_info": {"id": "gpt-4o"},
            },
        ],
        "router_settings": {"routing_strategy": "simple-shuffle", "num_retries": 0},
        "litellm_settings": {"drop_params": True, "telemetry": False},
        "general_settings": {"master_key": MASTER_KEY},
    }


def server(port: int, upstream_base_url: str, cores: str | None) -> ServerProcess:
    """A ServerProcess for the proxy (call `.start()`); installs the venv first if needed."""
    python = ensure_venv()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    config_path = RESULTS_DIR / "litellm-proxy.yaml"
    config_path.write_text(yaml.safe_dump(proxy_config(upstream_base_url), sort_keys=False))
    env = bench_env(LITELLM_MASTER_KEY=MASTER_KEY, LITELLM_LOG="ERROR", DISABLE_ADMIN_UI="True")
    command = [
        str(python),
        "-m",
        "litellm.proxy.proxy_cli",
        "--config",
        str(config_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    return ServerProcess(
        name="litellm-proxy",
        command=command,
        port=port,
        cores=cores,
        env=env,
        cwd=VENV_DIR,
        health_path="/health/liveliness",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--setup", action="store_true", help="create the venv and exit")
    parser.add_argument("--port", type=int)
    parser.add_argument("--upstream", help="base URL of the upstream, e.g. http://127.0.0.1:9000")
    args = parser.parse_args()
    python = ensure_venv()
    if args.setup:
        print(f"{LITELLM_PROXY_REQUIREMENT} ready in {python}")
        return
    if args.port is None or args.upstream is None:
        parser.error("--port and --upstream are required to serve")
    proxy = server(args.port, args.upstream, cores=None)
    os.chdir(proxy.cwd)
    os.execve(proxy.command[0], proxy.command, proxy.env)


if __name__ == "__main__":
    main()
