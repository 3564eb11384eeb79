"""Generate the chart's CRD template from crds/iaprun.dev_iaprunservices.yaml (the one source of truth).

The CRD's ``spec`` is copied verbatim (any ``{{`` is escaped so Helm does not read it as a template); its
metadata is rewritten so the chart can switch the CRD off (``crds.enabled``), keep it on uninstall
(``crds.keep`` -> ``helm.sh/resource-policy: keep``, and Argo CD's ``Prune=false,Delete=false`` sync options,
since Argo CD renders the chart with ``helm template`` and ignores Helm's resource policy) and label it like
its other objects.

Run ``python hack/gen_chart_crds.py`` to rewrite the template, ``--check`` to fail when it is stale (the unit
test tests/unit/test_chart_generated.py does that).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "crds" / "iaprun.dev_iaprunservices.yaml"
TEMPLATE = REPO / "charts" / "iap-run-operator" / "templates" / "crd-iaprunservices.yaml"

HEADER = """\
{{- /* Generated from crds/iaprun.dev_iaprunservices.yaml by hack/gen_chart_crds.py: do not edit. */ -}}
{{- if .Values.crds.enabled }}
apiVersion: %(api_version)s
kind: CustomResourceDefinition
metadata:
  name: %(name)s
  {{- if .Values.crds.keep }}
  annotations:
    helm.sh/resource-policy: keep
    argocd.argoproj.io/sync-options: Prune=false,Delete=false
  {{- end }}
  labels:
    {{- include "iap-run-operator.labels" . | nindent 4 }}
    app.kubernetes.io/component: crds
"""
FOOTER = "{{- end }}\n"


class SourceError(ValueError):
    """The source CRD has a shape this generator does not translate faithfully."""


def render(source_text: str) -> str:
    crd = yaml.safe_load(source_text)
    if crd.get("kind") != "CustomResourceDefinition":
        raise SourceError("not a CustomResourceDefinition")
    extra = set(crd["metadata"]) - {"name"}
    if extra:
        raise SourceError(f"metadata fields the template would drop: {sorted(extra)}")
    if set(crd) != {"apiVersion", "kind", "metadata", "spec"}:
        raise SourceError(f"unexpected top-level fields: {sorted(set(crd))}")
    match = re.search(r"^spec:.*$", source_text, flags=re.MULTILINE)
    if match is None:
        raise SourceError("no top-level 'spec:' line")
    spec_text = source_text[match.start() :].rstrip("\n") + "\n"
    if re.search(r"^[A-Za-z]", spec_text.split("\n", 1)[1], flags=re.MULTILINE):
        raise SourceError("'spec' must be the last top-level field")
    spec_text = spec_text.replace("{{", '{{ "{{" }}')
    header = HEADER % {"api_version": crd["apiVersion"], "name": crd["metadata"]["name"]}
    return header + spec_text + FOOTER


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if the chart's CRD template is stale")
    args = parser.parse_args(argv)
    expected = render(SOURCE.read_text())
    if args.check:
        if not TEMPLATE.exists() or TEMPLATE.read_text() != expected:
            print(f"{TEMPLATE.relative_to(REPO)} is stale: run `python hack/gen_chart_crds.py`", file=sys.stderr)
            return 1
        return 0
    TEMPLATE.write_text(expected)
    return 0


if __name__ == "__main__":
    sys.exit(main())
