"""modelplane: self-hosted LLaMA on Kubernetes GPUs and external models behind one policy router."""

__version__ = "0.1.0"
