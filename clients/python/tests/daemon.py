"""Starts the real srtpd binary for the client's tests ($SRTPD_BIN, else the checkout's
target/debug/srtpd, built by ``cargo build``)."""
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def srtpd_bin() -> str:
    return os.environ.get("SRTPD_BIN", str(ROOT / "target" / "debug" / "srtpd"))


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """srtpd on a temporary socket, loopback binds, one worker; stopped by ``stop``."""

    def __init__(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        d = Path(self.dir.name)
        self.socket = d / "srtpd.sock"
        config = d / "srtpd.toml"
        config.write_text(
            f'[control]\nsocket = "{self.socket}"\n[media]\nbind_v4 = "127.0.0.1"\nworkers = 1\n'
            '[calls]\nrtcp_interval_ms = 500\n[log]\nlevel = "warn"\n'
        )
        self.log = open(d / "srtpd.log", "wb")
        self.proc = subprocess.Popen(
            [srtpd_bin(), "--config", str(config)], stdout=subprocess.DEVNULL, stderr=self.log
        )
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"srtpd did not start: {(d / 'srtpd.log').read_text()}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()
        self.dir.cleanup()
