#!/usr/bin/env bash
# HTTPS throughput of the admission endpoints against a bare server (examples/bare_webhook.rs:
# TLS, parse the body as JSON, echo request.uid) in the same run: HTTP/1.1 keep-alive, 16
# connections, h2load --h1 (Debian's nghttp2-client), logging at the default level. The machine
# is shared and noisy, so the figure is the ratio, measured side by side in each round; the
# medians and ranges over the rounds close the output.
#   usage: benches/https/run.sh [seconds per measurement] [rounds] [pods] [mesh identities]
#
# Latency under a fixed load (examples/fixed_rate.rs, open loop): p50/p99/max of the MeshIdentity
# review at a fixed request rate, then of the bare server (and BASELINE) with the same client.
#   usage: benches/https/run.sh latency [seconds] [rate] [pods] [mesh identities]
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=throughput
if [ "${1:-}" = latency ]; then mode=latency; shift; fi
if [ $mode = latency ]; then
  seconds=${1:-30}; rate=${2:-200}; pods=${3:-50000}; identities=${4:-10}
else
  seconds=${1:-10}; rounds=${2:-3}; pods=${3:-1000}; identities=${4:-10}
fi
command -v h2load >/dev/null || { echo "h2load is missing: apt-get install nghttp2-client" >&2; exit 1; }
cargo build --release --quiet --bin kuma-identity-webhook --example bare_webhook --example fixed_rate
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
python3 benches/https/cluster_state.py "$pods" "$identities" >"$work/state.json"
# Ports: BENCH_PORT (webhook), +1 (bare server), +2 (webhook admin), +3 and +4 (baseline).
port=${BENCH_PORT:-18443} bare_port=$((port + 1)) admin_port=$((port + 2))
base_port=$((port + 3))
# Starts the webhook binary $1 on port $2 (admin on $3), logging to $4, and waits until ready.
start_webhook() {
  "$1" serve --dev --cluster-state "$work/state.json" --listen 127.0.0.1:$2 --admin-listen 127.0.0.1:$3 \
    --shutdown-delay 0s --shutdown-grace 1s >"$4" 2>&1 &
  pids+=($!)
  for _ in $(seq 300); do curl -sf --cacert certs/ca.crt https://localhost:$2/readyz >/dev/null && break; sleep 0.2; done
  curl -sf --cacert certs/ca.crt https://localhost:$2/readyz >/dev/null || { echo "$1 did not get ready" >&2; exit 1; }
  # A server left over on the port answers readyz too; this one must be alive to be measured.
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "$1 exited (port $2 taken?): $(tail -1 "$4")" >&2; exit 1; }
}
start_webhook ./target/release/kuma-identity-webhook $port $admin_port /tmp/kiw-bench-server.log
mi=validate-kuma-io-v1alpha1-meshidentity
./target/release/examples/bare_webhook 127.0.0.1:$bare_port certs/tls.crt certs/tls.key &
pids+=($!)
for _ in $(seq 50); do curl -s --cacert certs/ca.crt -o /dev/null https://localhost:$bare_port/ && break; sleep 0.2; done
kill -0 "${pids[-1]}" 2>/dev/null || { echo "the bare server did not start (port $bare_port taken?)" >&2; exit 1; }
# BASELINE=path/to/an/older/binary measures it in the same rounds, for before/after ratios.
if [ -n "${BASELINE:-}" ]; then start_webhook "$BASELINE" $base_port $((port + 4)) /tmp/kiw-bench-baseline.log; fi
if [ $mode = latency ]; then
  # One after the other, the same client: the webhook, the bare server (the floor: TLS, HTTP and
  # the client's own share) and the baseline if given.
  echo "$pods pods, $identities MeshIdentities: /$mi at $rate req/s for ${seconds}s"
  targets="webhook:$port bare:$bare_port"
  if [ -n "${BASELINE:-}" ]; then targets="$targets baseline:$base_port"; fi
  for target in $targets; do
    printf '%-9s ' "${target%%:*}"
    ./target/release/examples/fixed_rate "https://localhost:${target##*:}/$mi?timeout=10s" \
      benches/https/meshidentity-review.json certs/ca.crt "$rate" "$seconds"
  done
  exit 0
fi
# Requests per second of one h2load run: POST BODY to URL.
rate() {
  h2load --h1 -c16 -t1 -D "$seconds" -d "$2" -H 'Content-Type: application/json' "$1" |
    awk '/^finished in/ {print $4} / 2xx,/ && $5 + $7 + $9 != 0 {print "non-2xx answers: " $0 >"/dev/stderr"}'
}
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
echo "$pods pods, $identities MeshIdentities, ${seconds}s a measurement"
# The servers measured in a round, in the order of the first round; later rounds rotate it, so
# no server always runs first or last (two copies of one binary then measure alike: medians
# 0.59 and 0.58, 0.62 and 0.63).
servers="bare:$bare_port: hook:$port:?timeout=10s"
if [ -n "${BASELINE:-}" ]; then servers="$servers baseline:$base_port:?timeout=10s"; fi
read -ra order <<<"$servers"
for round in $(seq "$rounds"); do
  line="round $round:"
  for endpoint in $mi:meshidentity-review.json mutate-v1-pod:pod-review.json; do
    path=${endpoint%%:*} body=benches/https/${endpoint##*:}
    declare -A got=()
    for server in "${order[@]}"; do
      IFS=: read -r name server_port query <<<"$server"
      got[$name]=$(rate "https://localhost:$server_port/$path$query" "$body")
    done
    r=$(ratio "${got[hook]}" "${got[bare]}")
    echo "$path $r" >>"$work/ratios"
    line="$line /$path ${got[hook]} vs bare ${got[bare]} req/s (ratio $r)"
    if [ -n "${BASELINE:-}" ]; then
      echo "$path(baseline) $(ratio "${got[baseline]}" "${got[bare]}")" >>"$work/ratios"
      line="$line, baseline ${got[baseline]} req/s (ratio $(ratio "${got[baseline]}" "${got[bare]}"))"
    fi
    line="$line;"
    unset got
  done
  echo "$line (order: ${order[*]%%:*})"
  order=("${order[@]:1}" "${order[0]}")
done
python3 - "$work/ratios" <<'PY'
import statistics, sys
by_path = {}
for line in open(sys.argv[1]):
    path, r = line.split()
    by_path.setdefault(path, []).append(float(r))
for path, rs in by_path.items():
    print(f"/{path}: ratio to the bare server median {statistics.median(rs):.2f} (range {min(rs):.2f}-{max(rs):.2f}, {len(rs)} rounds)")
PY
