#!/usr/bin/env python3
"""A voice bot that answers every call srtpd starts and echoes what the caller says.

It serves a WebSocket on 127.0.0.1:PORT (Twilio Media Streams dialect), subscribes to
srtpd's events, and bridges each call that starts (``call.bridge``) to itself: every
``media`` message it gets (20 ms of the caller's audio, µ-law at 8 kHz) goes straight back
as the bot's audio, so the caller hears themselves about a packet later.

    pip install websockets          # the example's WebSocket server; srtpd_client needs nothing
    python3 echo_bot.py --socket /run/srtpd/srtpd.sock --port 8765

It runs until srtpd shuts down (or Ctrl-C), printing a line per call.
"""
import argparse
import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import websockets  # noqa: E402

from srtpd_client import Client, SrtpdError  # noqa: E402


async def echo(ws, *_path):
    """One call's stream: audio in, the same audio out."""
    sid = None
    frames = 0
    async for message in ws:
        m = json.loads(message)
        if m["event"] == "start":
            sid = m["streamSid"]
            print(f"echo: call {m['start']['callSid']} connected", flush=True)
        elif m["event"] == "media" and sid is not None:
            frames += 1
            try:
                await ws.send(json.dumps(
                    {"event": "media", "streamSid": sid, "media": {"payload": m["media"]["payload"]}}
                ))
            except websockets.ConnectionClosed:
                # srtpd ended the stream (stop, then its close) while this frame was on its
                # way back: what it sent before the close, its stop among it, is still read.
                continue
        elif m["event"] == "stop":
            print(f"echo: call {m['stop']['callSid']} ended after {frames} frames", flush=True)
            break


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", help="srtpd's control socket (default: $SRTPD_SOCKET, ...)")
    parser.add_argument("--port", type=int, default=8765, help="the bot's WebSocket port")
    args = parser.parse_args()

    async with websockets.serve(echo, "127.0.0.1", args.port):
        async with await Client.connect(args.socket) as srtpd:
            await srtpd.subscribe()
            print(f"echo: listening on ws://127.0.0.1:{args.port}/, waiting for calls", flush=True)
            async for event in srtpd.events():
                if event["event"] != "call.started":
                    continue
                call_id = event["call_id"]
                try:
                    await srtpd.bridge(call_id, f"ws://127.0.0.1:{args.port}/echo",
                                       format="twilio", on_close="terminate")
                except SrtpdError as e:
                    print(f"echo: cannot bridge {call_id}: {e}", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
