"""iap-run-operator: Cloud Run services behind Identity-Aware Proxy, declared as Kubernetes objects."""

__version__ = "0.1.0"
