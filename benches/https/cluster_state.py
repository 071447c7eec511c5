#!/usr/bin/env python3
"""Writes a cluster state for the HTTPS bench (`serve --cluster-state`) to standard output: one
Mesh, meshed namespaces, MeshIdentities that each select one app, and pods shaped like meshed
Deployment replicas spread over the namespaces and apps (some of them `app: web`, which the
bench's MeshIdentity review selects). Generated rather than committed: 50 000 pods are ~16 MB.

    usage: cluster_state.py PODS MESH_IDENTITIES > state.json
"""
import json
import sys

NAMESPACES = 20
APPS = 50


def main():
    pods, identities = int(sys.argv[1]), int(sys.argv[2])
    items = [{"apiVersion": "kuma.io/v1alpha1", "kind": "Mesh", "metadata": {"name": "default"},
              "spec": {"meshServices": {"mode": "Exclusive"}}},
             {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kuma-system"}}]
    for n in range(NAMESPACES):
        items.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": f"team-{n}", "labels": {"kuma.io/sidecar-injection": "enabled"}}})
    for i in range(identities):
        items.append({
            "apiVersion": "kuma.io/v1alpha1", "kind": "MeshIdentity",
            "metadata": {"name": f"identity-{i}", "namespace": "kuma-system",
                         "labels": {"kuma.io/mesh": "default", "kuma.io/origin": "zone"}},
            "spec": {"selector": {"dataplane": {"matchLabels": {"app": app(i)}}},
                     "spiffeID": {"trustDomain": "{{ .Mesh }}.{{ .Zone }}.mesh.local",
                                  "path": "/ns/{{ .Namespace }}/sa/{{ .ServiceAccount }}"},
                     "provider": {"type": "Bundled", "bundled": {
                         "meshTrustCreation": "Enabled", "autogenerate": {"enabled": True}}}}})
    for p in range(pods):
        name = app(p % APPS)
        items.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{name}-{p:06d}", "namespace": f"team-{p % NAMESPACES}",
                         "labels": {"app": name, "app.kubernetes.io/name": name,
                                    "pod-template-hash": "7d9f8c6b5", "version": "v1"}},
            "spec": {"serviceAccountName": name,
                     "containers": [{"name": name, "image": f"registry.local/{name}:1.0"}]}})
    json.dump({"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout)


def app(i):
    # App 0 is `web`, the app the bench's MeshIdentity review selects.
    return "web" if i == 0 else f"app-{i}"


if __name__ == "__main__":
    main()
