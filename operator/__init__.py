"""The modelplane operator: reconciles ModelDeployment resources into GPU workloads."""
