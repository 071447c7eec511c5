#!/usr/bin/env python3
"""Peak memory of the server under issue 11's hostile inputs, one door at a time.

For each hostile request, starts a fresh `BINARY serve --dev` on the example cluster state (plus
300 pods), sends the request alone, and prints the answer (HTTP status, or how the connection
ended), whether the process survived, and its peak memory (VmHWM) by then, so each door's figure
is its own. An old build that crashes can be measured too.

    python3 benches/hostile/peak.py target/release/kuma-identity-webhook

Standard library only.
"""

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXTRA_PODS = 300


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster_state(directory):
    with open(os.path.join(REPO, "deploy/examples/cluster-state.yaml")) as f:
        text = f.read()
    for i in range(EXTRA_PODS):
        text += (
            f"---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p-{i}\n  namespace: shop\n"
            f"  labels: {{app: p{i}}}\nspec:\n  serviceAccountName: sa-{i}\n"
        )
    path = os.path.join(directory, "cluster-state.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def meshidentity(name, spec):
    return {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": f"uid-{name}",
            "kind": {"group": "kuma.io", "version": "v1alpha1", "kind": "MeshIdentity"},
            "resource": {"group": "kuma.io", "version": "v1alpha1", "resource": "meshidentities"},
            "name": name, "namespace": "kuma-system", "operation": "CREATE",
            "userInfo": {"username": "admin"},
            "object": {"apiVersion": "kuma.io/v1alpha1", "kind": "MeshIdentity",
                       "metadata": {"name": name, "namespace": "kuma-system",
                                    "labels": {"kuma.io/mesh": "default"}},
                       "spec": spec},
        },
    }


def doors():
    def trust_domain(template):
        return json.dumps(meshidentity("td", {"spiffeID": {"trustDomain": template}})).encode()

    containers = [{"name": f"c{i}", "image": "x"} for i in range(38_000)]
    pod = {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "uid-pod", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "many", "namespace": "shop", "operation": "CREATE",
            "userInfo": {"username": "jane"},
            "object": {"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "many", "namespace": "shop",
                                    "labels": {"k8s.kuma.io/spire-support": "true"}},
                       "spec": {"containers": containers}},
        },
    }
    doubled = '{{ $x := "aaaa" }}' + "{{ $x = print $x $x }}" * 22 + "{{ $x }}"
    wide = meshidentity("a", {
        "selector": {"dataplane": {"matchLabels": {}}},
        "spiffeID": {"path": '{{ range 9000 }}{{ end }}/ns/{{ label "k8s.kuma.io/namespace" }}'},
    })
    mi = "/validate-kuma-io-v1alpha1-meshidentity"
    return [
        ('printf "%1000000000000d"', mi, trust_domain('{{ printf "%1000000000000d" 1 }}')),
        ('printf "%*d" 1000000000', mi, trust_domain('{{ printf "%*d" 1000000000 1 }}')),
        ('printf "%.100000000f"', mi, trust_domain('{{ printf "%.100000000f" 1.5 }}')),
        ('printf "%.70000f"', mi, trust_domain('{{ printf "%.70000f" 1.5 }}')),
        ('printf "%300000000d"', mi, trust_domain('{{ printf "%300000000d" 1 }}')),
        ('printf "%9999999d"', mi, trust_domain('{{ printf "%9999999d" 1 }}')),
        ("string doubled 22 times", mi, trust_domain(doubled)),
        ("9000-step path for 300 pods", mi, json.dumps(wide).encode()),
        ("38 000-container pod", "/mutate-v1-pod", json.dumps(pod).encode()),
        ("6.8 MiB array of zeros", "/validate-v1-pod", ("[" + "0," * 3_400_000 + "0]").encode()),
    ]


class Server:
    def __init__(self, binary, state, directory):
        self.port, self.admin = free_port(), free_port()
        self.directory = directory
        self.process = subprocess.Popen(
            [binary, "serve", "--dev", "--cluster-state", state,
             "--listen", f"127.0.0.1:{self.port}", "--admin-listen", f"127.0.0.1:{self.admin}",
             "--tls-cert", os.path.join(directory, "tls.crt"),
             "--tls-key", os.path.join(directory, "tls.key")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "KUMA_RUNTIME_KUBERNETES_INJECTOR_SPIRE_ENABLED": "true"},
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=1)
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def peak_mib(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
        return None

    def post(self, path, body):
        context = ssl.create_default_context(cafile=os.path.join(self.directory, "ca.crt"))
        connection = http.client.HTTPSConnection("localhost", self.port, context=context, timeout=30)
        try:
            connection.request("POST", path + "?timeout=10s", body=body,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            text = response.read().decode(errors="replace")
            try:
                text = json.loads(text)["response"]["status"]["message"]
            except (ValueError, KeyError, TypeError):
                pass
            return f"{response.status} {text[:90]!r}"
        except (OSError, http.client.HTTPException) as e:
            return f"no answer ({type(e).__name__})"

    def stop(self):
        self.process.kill()
        self.process.wait()


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as directory:
        state = cluster_state(directory)
        for name, path, body in doors():
            server = Server(binary, state, directory)
            idle = server.peak_mib()
            answer = server.post(path, body)
            time.sleep(0.2)
            alive = server.process.poll() is None
            peak = f"{server.peak_mib()} MiB" if alive else "-"
            print(f"{name:30} {answer[:70]:72} {'alive' if alive else 'DIED':5} "
                  f"peak {peak} (idle {idle} MiB)")
            server.stop()


if __name__ == "__main__":
    main()
