#!/usr/bin/env python3
"""Prints BENCHMARKS.md's load table from the JSON lines scripts/load_matrix.sh appended.

    python3 scripts/load_table.py /tmp/matrix.jsonl
"""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print("| layout | peers | sources | io | calls | pkts/s per call (floor) | lost | CPU/packet | floor CPU/packet | ratio | floor lost | RSS/call | inter-packet p50 / p99 / max |")
print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for r in rows:
    d, f = r["daemon"], r.get("floor", {})
    lost = d["to_peer"]["lost"] + d["from_peer"]["lost"]
    flost = f["to_peer"]["lost"] + f["from_peer"]["lost"] if f else 0
    ip = d["interpacket_ms"]
    io = r.get("io", "epoll")
    print(
        f"| {r['layout']} | {r['peers']} | {r.get('sources', 'own')} | {io} | {r['calls']:,} "
        f"| {d['achieved_pps_per_call']} ({f.get('achieved_pps_per_call', '-')}) "
        f"| {lost:,} ({d['loss_ratio'] * 100:.2f}%) | {d['cpu_ns_per_packet'] / 1000:.2f} µs "
        f"| {f.get('cpu_ns_per_packet', 0) / 1000:.2f} µs | {r.get('ratio', '-')} "
        f"| {flost:,} ({f.get('loss_ratio', 0) * 100:.2f}%) | {d['rss_per_call_kib']} KiB "
        f"| {ip['p50']} / {ip['p99']} / {ip['max']} ms |"
    )
