#!/usr/bin/env python3
"""A voice bot for srtpd's bridge tests, on the `websockets` library (nobody here wrote it).

Serves WebSocket connections on 127.0.0.1:PORT. For each: reads `start` (Twilio Media
Streams or L16 dialect), answers with SAY_MS of a SAY_HZ tone (Twilio: base64 µ-law `media`
messages of 100 ms; L16: binary 20 ms frames) and a `mark` named "said", and records what it
hears until `stop` or the end of the connection: OUTDIR/<callSid>.raw (16-bit little-endian
samples at the stream's rate) and OUTDIR/<callSid>.jsonl (every text message, in order).

    bot.py PORT OUTDIR SAY_HZ SAY_MS
"""
import asyncio
import base64
import json
import math
import os
import struct
import sys
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

import websockets

PORT, OUTDIR, SAY_HZ, SAY_MS = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])


def tone(rate, ms):
    n = rate * ms // 1000
    return b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * SAY_HZ * i / rate))) for i in range(n)
    )


async def serve(ws, path=None):
    heard = bytearray()
    events = []
    call_sid = "unknown"
    twilio = True
    rate = 8000
    try:
        async for message in ws:
            if isinstance(message, bytes):
                heard += message
                continue
            m = json.loads(message)
            events.append(m)
            event = m.get("event")
            if event == "start":
                call_sid = m["start"]["callSid"]
                fmt = m["start"]["mediaFormat"]
                twilio = fmt["encoding"] == "audio/x-mulaw"
                rate = fmt["sampleRate"]
                pcm = tone(rate, SAY_MS)
                sid = m["streamSid"]
                if twilio:
                    ulaw = audioop.lin2ulaw(pcm, 2)
                    for i in range(0, len(ulaw), 800):
                        payload = base64.b64encode(ulaw[i : i + 800]).decode()
                        await ws.send(json.dumps({"event": "media", "streamSid": sid, "media": {"payload": payload}}))
                else:
                    step = rate // 50 * 2
                    for i in range(0, len(pcm), step):
                        await ws.send(pcm[i : i + step])
                await ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": "said"}}))
            elif event == "media":
                heard += audioop.ulaw2lin(base64.b64decode(m["media"]["payload"]), 2)
            elif event == "stop":
                break
    except websockets.ConnectionClosed:
        pass
    finally:
        with open(os.path.join(OUTDIR, call_sid + ".raw"), "wb") as f:
            f.write(bytes(heard))
        with open(os.path.join(OUTDIR, call_sid + ".jsonl"), "w") as f:
            for m in events:
                f.write(json.dumps(m) + "\n")
        with open(os.path.join(OUTDIR, call_sid + ".done"), "w") as f:
            f.write("done\n")


async def main():
    async with websockets.serve(serve, "127.0.0.1", PORT, max_size=2**22):
        print("ready", flush=True)
        await asyncio.Future()


asyncio.run(main())
