#!/usr/bin/env bash
# HTTPS throughput of the admission endpoints beside the same server's /healthz, measured in one
# run over HTTP/1.1 keep-alive (wrk, from Debian's package). The machine is shared and noisy, so
# compare the ratio, not the absolute figures.
#   usage: benches/https/run.sh [seconds per round] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}
rounds=${2:-3}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet
port=18443
./target/release/kuma-identity-webhook serve --dev --cluster-state deploy/examples/cluster-state.yaml \
  --listen 127.0.0.1:$port --admin-listen 127.0.0.1:19090 >/tmp/kiw-bench-server.log 2>&1 &
server=$!
trap 'kill $server' EXIT
for _ in $(seq 50); do curl -sf --cacert certs/ca.crt https://localhost:$port/readyz >/dev/null && break; sleep 0.2; done
rate() { grep Requests/sec | awk '{print $2}'; }
for round in $(seq "$rounds"); do
  health=$(wrk -t1 -c16 -d"${seconds}s" "https://localhost:$port/healthz" | rate)
  line="round $round: /healthz $health req/s"
  for endpoint in validate-kuma-io-v1alpha1-meshidentity:meshidentity-review.json mutate-v1-pod:pod-review.json validate-v1-pod:pod-review.json; do
    path=${endpoint%%:*}
    rate_here=$(BODY=benches/https/${endpoint##*:} wrk -t1 -c16 -d"${seconds}s" -s benches/https/post.lua \
      "https://localhost:$port/$path?timeout=10s" | rate)
    line="$line, /$path $rate_here req/s (ratio $(python3 -c "print(f'{$rate_here/$health:.2f}')"))"
  done
  echo "$line"
done
