"""The local Kubernetes world for tests and the demo: control plane, kubectl, helm."""
