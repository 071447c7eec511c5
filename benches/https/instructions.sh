#!/usr/bin/env bash
# Instructions a request over the whole server process, the figure this shared machine's noise
# does not move (req/s between two runs of one binary here differ by up to a third; this figure
# by under 1 %). Each server runs under `valgrind --tool=callgrind` twice, answering FEW and then
# MANY requests from `h2load --h1 -c4`; the difference of the two totals over MANY - FEW is what
# one more request costs, startup and shutdown cancelling out. Instructions are not time: the
# webhook and the bare server cost about the same here while the bare server answers faster,
# the rest is cache misses (add --cache-sim=yes to VALGRIND_ARGS to see them) and system calls.
#   usage: benches/https/instructions.sh [meshidentity|mutate] [binary ...]
# With no binary, it measures this tree's release build and the bare server (examples/bare_webhook).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
command -v h2load >/dev/null || { echo "h2load is missing: apt-get install nghttp2-client" >&2; exit 1; }
case "${1:-meshidentity}" in
  meshidentity) path=validate-kuma-io-v1alpha1-meshidentity body=meshidentity-review.json ;;
  mutate) path=mutate-v1-pod body=pod-review.json ;;
  *) echo "usage: $0 [meshidentity|mutate] [binary ...]" >&2; exit 2 ;;
esac
shift || true
FEW=${FEW:-500} MANY=${MANY:-2500}
port=${BENCH_PORT:-19443}
cargo build --release --quiet --bin kuma-identity-webhook --example bare_webhook
binaries=("$@")
if [ ${#binaries[@]} = 0 ]; then
  binaries=(./target/release/kuma-identity-webhook ./target/release/examples/bare_webhook)
fi
work=$(mktemp -d)
server=
cleanup() { [ -z "$server" ] || kill "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
python3 benches/https/cluster_state.py 1000 10 >"$work/state.json"

# Total instructions of binary $1 answering $2 requests, start to exit.
total() {
  local out="$work/callgrind.out"
  rm -f "$out"*
  local args=(serve --dev --cluster-state "$work/state.json" --listen "127.0.0.1:$port"
    --admin-listen "127.0.0.1:$((port + 1))" --shutdown-delay 0s --shutdown-grace 1s)
  local url="https://localhost:$port/$path?timeout=10s"
  if [[ $1 == *bare_webhook ]]; then
    args=("127.0.0.1:$port" certs/tls.crt certs/tls.key) url="https://localhost:$port/"
  fi
  # shellcheck disable=SC2086 # VALGRIND_ARGS is a list of options
  valgrind --tool=callgrind ${VALGRIND_ARGS:-} --callgrind-out-file="$out" "$1" "${args[@]}" \
    >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 600); do
    curl -s --cacert certs/ca.crt -o /dev/null "https://localhost:$port/" && break
    sleep 0.2
  done
  h2load --h1 -c4 -n "$2" -d "benches/https/$body" -H 'Content-Type: application/json' "$url" \
    >"$work/h2load.txt"
  grep -q "$2 succeeded" "$work/h2load.txt" ||
    { echo "$1: not every request succeeded: $(grep succeeded "$work/h2load.txt")" >&2; exit 1; }
  # SIGTERM, not SIGINT: a script's background jobs ignore SIGINT. The webhook drains and
  # exits; the bare server has no handler and dies, which still lets callgrind write its totals.
  kill -TERM "$server"
  wait "$server" || true
  server=
  awk '/^(summary|totals):/ {print $2; exit}' "$out"
}

for binary in "${binaries[@]}"; do
  few=$(total "$binary" "$FEW")
  many=$(total "$binary" "$MANY")
  shown=/$path
  if [[ $binary == *bare_webhook ]]; then shown="/ ($body)"; fi
  echo "$binary $shown: $(((many - few) / (MANY - FEW))) instructions a request"
done
