#!/usr/bin/env python3
"""Prints BENCHMARKS.md's load table from the JSON lines scripts/load_matrix.sh appended.

    python3 scripts/load_table.py /tmp/matrix.jsonl
"""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print(
    "| layout | peers | sources | io | calls | pkts/s per call (floor) | lost (floor) "
    "| CPU/packet | floor | ratio | RSS/call | inter-packet p50 / p99 / max "
    "| transit p50 / p99 (floor) |"
)
print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|")


def lost(d):
    n = d["to_peer"]["lost"] + d["from_peer"]["lost"]
    return f"{n:,} ({d['loss_ratio'] * 100:.2f}%)" if n else "0"


for r in rows:
    d, f = r["daemon"], r.get("floor", {})
    ip = d["interpacket_ms"]
    t, ft = d.get("transit_to_peer_ms", {}), f.get("transit_to_peer_ms", {})
    print(
        f"| {r['layout']} | {r['peers']} | {r.get('sources', 'own')} | {r.get('io', 'epoll')} "
        f"| {r['calls']:,} | {d['achieved_pps_per_call']} ({f.get('achieved_pps_per_call', '-')}) "
        f"| {lost(d)} ({lost(f) if f else '-'}) "
        f"| {d['cpu_ns_per_packet'] / 1000:.2f} µs | {f.get('cpu_ns_per_packet', 0) / 1000:.2f} µs "
        f"| {r.get('ratio', '-')} | {d['rss_per_call_kib']} KiB "
        f"| {ip['p50']} / {ip['p99']} / {ip['max']} ms "
        f"| {t.get('p50', '-')} / {t.get('p99', '-')} ({ft.get('p50', '-')} / {ft.get('p99', '-')}) ms |"
    )
