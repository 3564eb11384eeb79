"""Pytest fixtures for the local control plane (filled in by the control-plane work)."""
