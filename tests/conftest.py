"""Shared pytest wiring: fixtures for the local world come from two plugins.

- ``testworld.fixtures``: the real kube-apiserver + etcd control plane, namespaces, clients, kubectl/helm.
- ``gcpemu.fixtures``: the local Google Cloud emulator (Cloud Run v2, IAP v1, Service Usage, CRM).
"""

pytest_plugins = ["testworld.fixtures", "gcpemu.fixtures"]
