"""Renders every kustomization under deploy/ and validates each object against the Kubernetes
schemas of the targeted version with kubernetes-validate in strict mode (unknown fields fail).
Objects of kinds the validator has no schema for (cert-manager's) are listed, not validated."""
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.33.0"


def main() -> int:
    kustomizations = sorted(p.parent for p in Path("deploy").rglob("kustomization.yaml"))
    failures = 0
    for root in kustomizations:
        rendered = subprocess.run(["kubectl", "kustomize", str(root)], check=True, capture_output=True, text=True).stdout
        for doc in yaml.safe_load_all(rendered):
            if not doc:
                continue
            name = f"{root}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            if doc.get("apiVersion", "").startswith("cert-manager.io/"):
                print(f"skipped (no schema): {name}")
                continue
            try:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
                print(f"valid: {name}")
            except kubernetes_validate.ValidationError as e:
                failures += 1
                print(f"INVALID: {name}: {e.message} at {'.'.join(str(p) for p in e.path)}")
            except Exception as e:  # noqa: BLE001 - report any validator failure as a failure
                failures += 1
                print(f"INVALID: {name}: {e}")
    print(f"{len(kustomizations)} kustomizations rendered, {failures} invalid objects")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
