"""The examples run against the real srtpd: examples/echo_bot.py answers a call through the
bridge, and the caller hears its own clip come back."""
import asyncio
import base64
import socket
import struct
import subprocess
import sys
import tempfile
import unittest
import wave
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from srtpd_client import Client, candidate, sdes  # noqa: E402
from contract import ContractChecker  # noqa: E402
from daemon import ROOT, Daemon, free_udp_port  # noqa: E402


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def key(byte: int) -> str:
    return base64.b64encode(bytes([byte]) * 30).decode()


class EchoBotTest(unittest.IsolatedAsyncioTestCase):
    async def test_the_caller_hears_its_clip_echoed(self) -> None:
        bot_side, caller = Daemon(), Daemon()
        port = free_tcp_port()
        bot = subprocess.Popen(
            [sys.executable, str(HERE.parent / "examples" / "echo_bot.py"),
             "--socket", str(bot_side.socket), "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        out = tempfile.TemporaryDirectory()
        try:
            self.assertIn("waiting for calls", await asyncio.to_thread(bot.stdout.readline))
            contract = ContractChecker()
            a = await Client.connect(bot_side.socket, trace=contract)
            b = await Client.connect(caller.socket, trace=contract)
            await b.subscribe()
            pa, pb = free_udp_port(), free_udp_port()
            for client, me, other, tx, rx in ((a, pa, pb, 1, 2), (b, pb, pa, 2, 1)):
                await client.start(
                    "echo-1", keying=sdes("AES_CM_128_HMAC_SHA1_80", key(tx), key(rx)),
                    bind=f"127.0.0.1:{me}", candidates=[candidate("127.0.0.1", other)],
                    audio={"payload_type": 111, "clock_rate": 48000, "source": {"kind": "silence"}},
                )
            self.assertIn("connected", await asyncio.to_thread(bot.stdout.readline))
            heard = Path(out.name) / "heard.wav"
            await b.record("echo-1", heard)
            await b.play("echo-1", ROOT / "assets" / "demo.opus")
            await b.next_event("track.source_ended", timeout=15)
            await asyncio.sleep(0.5)
            bridged = await a.stats("echo-1")
            self.assertGreater(bridged["bridge"]["packets_from_bot"], 250)
            await a.terminate("echo-1")
            self.assertIn("ended after", await asyncio.to_thread(bot.stdout.readline))
            await b.terminate("echo-1")
            with wave.open(str(heard)) as w:
                frames = w.readframes(w.getnframes())
            samples = struct.unpack(f"<{len(frames) // 2}h", frames)
            loud = sum(1 for s in samples if abs(s) > 1000)
            self.assertGreater(loud, 4 * 48000, "the clip's tones came back")
            await a.close()
            await b.close()
            self.assertEqual(contract.problems, [])
        finally:
            bot.terminate()
            bot.wait(10)
            bot.stdout.close()
            out.cleanup()
            bot_side.stop()
            caller.stop()


if __name__ == "__main__":
    unittest.main()
