"""The pure core: spec model, desired state, diffs, IAM merging, conditions. No I/O, no kopf."""
