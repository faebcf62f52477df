#!/usr/bin/env bash
# Runs srtpd-load against a fresh daemon for every layout, peer topology and call count given,
# each followed by the floor relay of the same layout in the same minute, and appends one JSON
# line per run to OUT. BENCHMARKS.md's load tables come from it (scripts/load_table.py).
#
#   scripts/load_matrix.sh OUT SECONDS "CONFIGS" "PEERS" "CALLS" [SRTPD-LOAD ARGS...]
#   scripts/load_matrix.sh /tmp/matrix.jsonl 30 "benches/load.toml benches/load-shared.toml" \
#       "per-call shared" "100 1000 2000 5000"
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1 seconds=$2 configs=$3 peers=$4 calls=$5
shift 5
for config in $configs; do
  for peer in $peers; do
    for n in $calls; do
      sock=$(mktemp -u /tmp/srtpd-load-XXXXXX.sock)
      ./target/release/srtpd --config "$config" --socket "$sock" >/dev/null 2>&1 &
      daemon=$!
      for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
      if ./target/release/srtpd-load --socket "$sock" --calls "$n" --seconds "$seconds" \
          --peers "$peer" --floor "$@" 2>/dev/null >"$sock.json"; then
        python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["config"]=sys.argv[2]; print(json.dumps(r))' \
          "$sock.json" "$config" >>"$out"
      else
        echo "srtpd-load failed: $config $peer $n" >&2
      fi
      kill "$daemon"; wait "$daemon" 2>/dev/null || true
      rm -f "$sock" "$sock.json"
      sleep 2
    done
  done
done
