"""srtpd_client against the real srtpd binary."""
import asyncio
import base64
import os
import struct
import sys
import tempfile
import unittest
import wave
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import srtpd_client  # noqa: E402
from srtpd_client import (  # noqa: E402
    Client,
    ConnectionClosed,
    InvalidParams,
    MethodNotFound,
    NoSuchCall,
    SrtpdError,
    candidate,
    sdes,
)
from contract import ContractChecker  # noqa: E402
from daemon import ROOT, Daemon, free_udp_port  # noqa: E402

PROFILE = "AES_CM_128_HMAC_SHA1_80"


def key(byte: int) -> str:
    return base64.b64encode(bytes([byte]) * 30).decode()


class ClientTest(unittest.IsolatedAsyncioTestCase):
    """Every message each test exchanges is checked against docs/srtpd.openrpc.json."""

    def setUp(self) -> None:
        self.daemon = Daemon()
        self.contract = ContractChecker()

    def tearDown(self) -> None:
        self.daemon.stop()
        self.assertEqual(self.contract.problems, [])

    async def connect(self, path: Path) -> Client:
        return await Client.connect(path, trace=self.contract)

    async def test_the_contract_checker_catches_a_departure(self) -> None:
        checker = ContractChecker()
        checker("send", {"id": 1, "method": "daemon.status", "params": {}})
        checker("recv", {"jsonrpc": "2.0", "id": 1, "result": {"version": 1}})
        checker("recv", {"jsonrpc": "2.0", "method": "event", "params": {"event": "call.dtmf", "call_id": "x", "digit": "Z"}})
        self.assertTrue(any(p.startswith("daemon.status's result") for p in checker.problems))
        self.assertTrue(any(p.startswith("an event") for p in checker.problems))
        fine = ContractChecker()
        fine("send", {"id": 2, "method": "call.mute", "params": {"call_id": "c", "media": "audio", "muted": True}})
        fine("recv", {"jsonrpc": "2.0", "id": 2, "result": {"call_id": "c", "media": "audio", "muted": True}})
        self.assertEqual((fine.problems, fine.checked), ([], 2))

    async def test_status_and_errors_with_their_codes(self) -> None:
        async with await self.connect(self.daemon.socket) as srtpd:
            status = await srtpd.status()
            self.assertEqual(status["calls"], 0)
            self.assertTrue(status["version"])
            with self.assertRaises(NoSuchCall) as e:
                await srtpd.stats("nope")
            self.assertEqual(e.exception.code, -32001)
            self.assertIn("nope", e.exception.message)
            with self.assertRaises(MethodNotFound):
                await srtpd.call("call.nothing")
            with self.assertRaises(InvalidParams) as e:
                await srtpd.start(
                    "bad", keying=sdes(PROFILE, key(1), key(2)),
                    audio={"payload_type": 200, "clock_rate": 48000},
                )
            self.assertIn("payload_type", e.exception.message)
            self.assertIsInstance(e.exception, SrtpdError)
            # Nothing was left behind by the refusals, and the connection still works.
            self.assertEqual(await srtpd.list_calls(), [])

    async def test_a_requests_events_are_queued_before_its_answer(self) -> None:
        async with await self.connect(self.daemon.socket) as srtpd:
            self.assertEqual(await srtpd.subscribe(), {"subscribed": True})
            for i in range(20):
                call_id = f"order-{i}"
                started = await srtpd.start(
                    call_id, keying=sdes(PROFILE, key(1), key(2)),
                    candidates=[candidate("127.0.0.1", 20990)],
                    audio={"payload_type": 111, "clock_rate": 48000},
                )
                self.assertTrue(started["local"].startswith("127.0.0.1:"))
                # Already queued: no waiting needed.
                event = await srtpd.next_event("call.started", timeout=0.001)
                self.assertEqual(event["call_id"], call_id)
                final = await srtpd.terminate(call_id, "hangup")
                ended = await srtpd.next_event("call.ended", timeout=0.001)
                self.assertEqual((ended["call_id"], ended["reason"]), (call_id, "hangup"))
                self.assertEqual(ended["stats"], final)
            # 20 starts and terminates, their results and events: all as the contract says.
            self.assertGreaterEqual(self.contract.checked, 20 * 6)

    async def test_two_daemons_carry_a_clip_both_ways_of_the_api(self) -> None:
        peer = Daemon()
        try:
            here = tempfile.TemporaryDirectory()
            recording = Path(here.name) / "heard.wav"
            a, b = await self.connect(self.daemon.socket), await self.connect(peer.socket)
            await a.subscribe()
            pa, pb = free_udp_port(), free_udp_port()
            for client, me, other, tx, rx in ((a, pa, pb, 1, 2), (b, pb, pa, 2, 1)):
                await client.start(
                    "clip-1", keying=sdes(PROFILE, key(tx), key(rx)), bind=f"127.0.0.1:{me}",
                    candidates=[candidate("127.0.0.1", other)],
                    audio={"payload_type": 111, "clock_rate": 48000, "source": {"kind": "silence"}},
                )
            await b.record("clip-1", recording)
            played = await a.play("clip-1", ROOT / "assets" / "demo.opus")
            self.assertEqual(played["packets"], 301)
            ended = await a.next_event("track.source_ended", timeout=15)
            self.assertEqual(ended["media"], "audio")
            await asyncio.sleep(0.3)
            got = await b.terminate("clip-1")
            await a.terminate("clip-1")
            self.assertGreaterEqual(got["audio"]["received"]["packets"], 301)
            with wave.open(str(recording)) as w:
                self.assertEqual((w.getframerate(), w.getnchannels()), (48000, 1))
                frames = w.readframes(w.getnframes())
            samples = struct.unpack(f"<{len(frames) // 2}h", frames)
            loud = sum(1 for s in samples if abs(s) > 1000)
            self.assertGreater(loud, 48000, "about 6 s of tones were recorded")
            await a.close()
            await b.close()
            here.cleanup()
        finally:
            peer.stop()

    async def test_events_end_when_srtpd_shuts_down(self) -> None:
        srtpd = await self.connect(self.daemon.socket)
        await srtpd.subscribe()
        await srtpd.start(
            "last-1", keying=sdes(PROFILE, key(1), key(2)),
            audio={"payload_type": 111, "clock_rate": 48000},
        )
        await srtpd.shutdown()
        seen = [e async for e in srtpd.events()]
        self.assertEqual([e["event"] for e in seen], ["call.started", "call.ended"])
        self.assertEqual(seen[-1]["reason"], "shutdown")
        with self.assertRaises(ConnectionClosed):
            await srtpd.status()
        await srtpd.close()

    async def test_a_missing_daemon_is_explained(self) -> None:
        missing = Path(self.daemon.dir.name) / "nobody.sock"
        with self.assertRaises(ConnectionError) as e:
            await Client.connect(missing)
        self.assertIn(str(missing), str(e.exception))
        self.assertIn("SRTPD_SOCKET", str(e.exception))

    def test_the_default_socket_is_srtpds(self) -> None:
        old = dict(os.environ)
        try:
            os.environ.pop("SRTPD_SOCKET", None)
            os.environ["XDG_RUNTIME_DIR"] = "/run/user/1000"
            self.assertEqual(srtpd_client.default_socket(), Path("/run/user/1000/srtpd.sock"))
            os.environ["SRTPD_SOCKET"] = "/x/y.sock"
            self.assertEqual(srtpd_client.default_socket(), Path("/x/y.sock"))
        finally:
            os.environ.clear()
            os.environ.update(old)


if __name__ == "__main__":
    unittest.main()
