#!/usr/bin/env python3
"""Prints the srtpd vs webrtc-srtp table for BENCHMARKS.md from the last `cargo bench --bench srtp`.

Reads criterion's estimates (median of each benchmark) under target/criterion.
"""
import glob
import json
import os

root = os.path.join(os.path.dirname(__file__), "..", "target", "criterion")
print("| operation | profile | payload | srtpd | webrtc-srtp | ratio |")
print("|---|---|---:|---:|---:|---:|")
for path in sorted(glob.glob(os.path.join(root, "*", "srtpd", "new", "estimates.json"))):
    group = path.split(os.sep)[-4]
    op, rest = group.split("_", 1)
    profile, payload = rest.rsplit("_", 1)
    ours = json.load(open(path))["median"]["point_estimate"]
    theirs_path = path.replace(os.sep + "srtpd" + os.sep, os.sep + "webrtc-srtp" + os.sep)
    theirs = json.load(open(theirs_path))["median"]["point_estimate"]
    print(f"| {op} | {profile} | {payload} B | {ours:.0f} ns | {theirs:.0f} ns | {ours / theirs:.3f} |")
