"""`modelplane operator run` as a process, logging in through a kubeconfig like in a cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from modelplane.testing.kube import EmulatedCluster, KubeHttpClient, wait_for
from modelplane.testing.operator import model_deployment


def test_operator_run_reconciles_the_namespace_of_the_kubeconfig_cluster_and_stops_cleanly(
    cluster: EmulatedCluster, kube: KubeHttpClient, namespace: str, tmp_path: Path
) -> None:
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    log = tmp_path / "operator.log"
    command = [sys.executable, "-m", "modelplane", "operator", "run", "--namespace", namespace]
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            kube.create(model_deployment("llama", namespace))
            kube.create(model_deployment("elsewhere", f"{namespace}-other"))
            wait_for(
                lambda: (kube.get("ModelDeployment", namespace, "llama") or {}).get("status"),
                timeout=60,
                what="the operator process to reconcile (log: " + str(log) + ")",
            )
        finally:
            process.send_signal(signal.SIGTERM)
            exit_code = process.wait(timeout=30)

    assert exit_code == 0, log.read_text()[-2000:]
    assert kube.get("Deployment", namespace, "llama") is not None
    assert kube.list("Deployment", f"{namespace}-other") == []  # outside its namespace
