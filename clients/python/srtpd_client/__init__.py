"""An asyncio client for srtpd's control socket (docs/PROTOCOL.md, docs/srtpd.openrpc.json).

Standard library only. One connection carries requests, their answers and (after
``subscribe``) events; answers are matched to requests by id, and events come out of
:meth:`Client.events` in the order srtpd sent them. srtpd sends the events a request causes
before its answer, so once ``await client.terminate(...)`` returns, its ``call.ended`` is
already waiting in the event queue.

    async with await Client.connect() as srtpd:
        await srtpd.subscribe()
        started = await srtpd.start("call-1", keying=sdes(...), candidates=[...])
        async for event in srtpd.events():
            ...

Errors come back as :class:`SrtpdError` (a subclass per JSON-RPC code: :class:`NoSuchCall`,
:class:`InvalidParams`, ...), carrying ``code`` and ``message``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Dict, List, Mapping, Optional, Type, Union

__all__ = [
    "Client",
    "SrtpdError",
    "ParseError",
    "InvalidRequest",
    "MethodNotFound",
    "InvalidParams",
    "InternalError",
    "NoSuchCall",
    "CallExists",
    "NoFreePort",
    "BadKeying",
    "TooManyCalls",
    "ServerBusy",
    "ConnectionClosed",
    "default_socket",
    "sdes",
    "candidate",
]

Json = Any
Event = Dict[str, Any]
#: Called with ("send", request) for every request and ("recv", message) for every line
#: srtpd sends: for logging the protocol, or checking it against docs/srtpd.openrpc.json.
Trace = Callable[[str, Dict[str, Any]], None]

#: Events kept for a reader that does not keep up; beyond it they are dropped and the next
#: event the reader gets is ``{"event": "events.lost", "count": n}``, as srtpd itself does.
EVENT_QUEUE = 10_000

#: The longest line read from srtpd (call.list of thousands of calls fits).
MAX_LINE = 64 * 1024 * 1024


class SrtpdError(Exception):
    """An error answer: ``code`` is the JSON-RPC code, ``message`` srtpd's words."""

    code: int = 0

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message


class ParseError(SrtpdError):
    code = -32700


class InvalidRequest(SrtpdError):
    code = -32600


class MethodNotFound(SrtpdError):
    code = -32601


class InvalidParams(SrtpdError):
    code = -32602


class InternalError(SrtpdError):
    code = -32603


class NoSuchCall(SrtpdError):
    code = -32001


class CallExists(SrtpdError):
    code = -32002


class NoFreePort(SrtpdError):
    code = -32003


class BadKeying(SrtpdError):
    code = -32004


class TooManyCalls(SrtpdError):
    code = -32005


class ServerBusy(SrtpdError):
    code = -32006


class ConnectionClosed(Exception):
    """srtpd closed the connection (it shut down, or refused us)."""


_BY_CODE: Dict[int, Type[SrtpdError]] = {
    cls.code: cls
    for cls in (
        ParseError,
        InvalidRequest,
        MethodNotFound,
        InvalidParams,
        InternalError,
        NoSuchCall,
        CallExists,
        NoFreePort,
        BadKeying,
        TooManyCalls,
        ServerBusy,
    )
}


def _error(obj: Mapping[str, Any]) -> SrtpdError:
    code = int(obj.get("code", 0))
    return _BY_CODE.get(code, SrtpdError)(code, str(obj.get("message", "error")))


def default_socket() -> Path:
    """Where srtpd listens by default: ``$SRTPD_SOCKET``, else ``$XDG_RUNTIME_DIR/srtpd.sock``,
    else ``/tmp/srtpd-UID/srtpd.sock`` (as srtpd and srtpctl choose it)."""
    given = os.environ.get("SRTPD_SOCKET")
    if given:
        return Path(given)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "srtpd.sock"
    return Path("/tmp") / f"srtpd-{os.getuid()}" / "srtpd.sock"


def sdes(profile: str, tx: str, rx: str) -> Dict[str, str]:
    """SDES keying: our base64 key||salt (``tx``) and the peer's (``rx``)."""
    return {"scheme": "sdes", "profile": profile, "tx": tx, "rx": rx}


def candidate(ip: str, port: int, priority: int = 1) -> Dict[str, Any]:
    """A peer's transport candidate."""
    return {"ip": ip, "port": port, "priority": priority}


class Client:
    """One connection to srtpd. Make it with :meth:`connect`; close it with :meth:`close`
    (or ``async with``)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 trace: Optional[Trace] = None) -> None:
        self._trace = trace
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: Dict[int, asyncio.Future[Json]] = {}
        self._events: asyncio.Queue[Optional[Event]] = asyncio.Queue()
        self._queued = 0
        self._lost = 0
        self._closed: Optional[BaseException] = None
        self._task = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, path: Union[str, Path, None] = None,
                      trace: Optional[Trace] = None) -> "Client":
        """Connects to srtpd's control socket (default: :func:`default_socket`); ``trace``
        sees every message both ways."""
        where = Path(path) if path is not None else default_socket()
        try:
            reader, writer = await asyncio.open_unix_connection(str(where), limit=MAX_LINE)
        except OSError as e:
            raise ConnectionError(
                f"cannot connect to srtpd at {where}: {e.strerror or e}; is srtpd running? "
                "Pass its socket path, or set $SRTPD_SOCKET"
            ) from e
        return cls(reader, writer, trace)

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the connection; pending calls fail with :class:`ConnectionClosed`."""
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):
            pass
        self._finish(ConnectionClosed("closed by the client"))

    def _finish(self, why: BaseException) -> None:
        if self._closed is None:
            self._closed = why
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(why)
            self._pending.clear()
            self._events.put_nowait(None)

    def _push_event(self, event: Event) -> None:
        if self._queued >= EVENT_QUEUE:
            self._lost += 1
            return
        if self._lost:
            self._events.put_nowait({"event": "events.lost", "count": self._lost})
            self._lost = 0
            self._queued += 1
        self._events.put_nowait(event)
        self._queued += 1

    async def _read(self) -> None:
        why: BaseException = ConnectionClosed("srtpd closed the connection")
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                msg = json.loads(line)
                if self._trace is not None:
                    self._trace("recv", msg)
                if msg.get("method") == "event":
                    self._push_event(msg.get("params", {}))
                    continue
                fut = self._pending.pop(msg.get("id"), None) if "id" in msg else None
                if fut is None:
                    if msg.get("id") is None and "error" in msg:
                        why = _error(msg["error"])
                    continue
                if fut.done():
                    continue
                if "error" in msg:
                    fut.set_exception(_error(msg["error"]))
                else:
                    fut.set_result(msg.get("result"))
        except (OSError, ValueError, asyncio.LimitOverrunError) as e:
            why = ConnectionClosed(f"reading from srtpd: {e}")
        finally:
            self._finish(why)

    async def call(self, method: str, params: Optional[Mapping[str, Any]] = None) -> Json:
        """Calls any method; returns its result or raises :class:`SrtpdError`."""
        if self._closed is not None:
            raise self._closed
        request_id = next(self._ids)
        fut: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = fut
        request = {"jsonrpc": "2.0", "id": request_id, "method": method,
                   "params": dict(params or {})}
        if self._trace is not None:
            self._trace("send", request)
        self._writer.write(json.dumps(request).encode() + b"\n")
        await self._writer.drain()
        return await fut

    async def events(self) -> AsyncIterator[Event]:
        """The events srtpd sends this connection (call :meth:`subscribe` first), in order,
        until the connection closes."""
        while True:
            event = await self._events.get()
            if event is None:
                self._events.put_nowait(None)
                return
            self._queued -= 1
            yield event

    async def next_event(self, name: Optional[str] = None, timeout: Optional[float] = None) -> Event:
        """The next event (named ``name``, if given; others before it are dropped)."""

        async def wait() -> Event:
            async for event in self.events():
                if name is None or event.get("event") == name:
                    return event
            raise self._closed or ConnectionClosed("srtpd closed the connection")

        return await asyncio.wait_for(wait(), timeout)

    # The methods, by name (docs/PROTOCOL.md).

    async def subscribe(self) -> Json:
        """Subscribes this connection to events."""
        return await self.call("events.subscribe")

    async def start(self, call_id: str, *, keying: Mapping[str, Any], **params: Any) -> Json:
        """``call.start``: ``candidates``, ``bind``, ``audio``, ``video``, ``bridge``, ... as
        keyword arguments (``self_id`` for ``self``)."""
        if "self_id" in params:
            params["self"] = params.pop("self_id")
        return await self.call("call.start", {"call_id": call_id, "keying": keying, **params})

    async def stanza(self, *, self_id: str, xml: Optional[str] = None,
                     node: Optional[Mapping[str, Any]] = None, **params: Any) -> Json:
        """``call.stanza``: forwards a ``<call>`` stanza as XML or as a JSON node."""
        body: Dict[str, Any] = {"self": self_id, **params}
        if xml is not None:
            body["xml"] = xml
        if node is not None:
            body["node"] = node
        return await self.call("call.stanza", body)

    async def mute(self, call_id: str, muted: bool = True, media: str = "audio") -> Json:
        return await self.call("call.mute", {"call_id": call_id, "media": media, "muted": muted})

    async def video(self, call_id: str, enabled: bool) -> Json:
        return await self.call("call.video", {"call_id": call_id, "enabled": enabled})

    async def dtmf(self, call_id: str, digits: str, duration_ms: int = 100) -> Json:
        return await self.call(
            "call.dtmf", {"call_id": call_id, "digits": digits, "duration_ms": duration_ms}
        )

    async def bridge(self, call_id: str, url: Optional[str], **params: Any) -> Json:
        """``call.bridge``: ``format``, ``rate``, ``parameters``, ``on_close``; ``url=None``
        detaches the bot."""
        return await self.call("call.bridge", {"call_id": call_id, "url": url, **params})

    async def play(self, call_id: str, path: Union[str, Path], loop: bool = False) -> Json:
        """``call.play``; a relative ``path`` is made absolute here (srtpd would take it to
        be inside its ``media.files_dir``)."""
        return await self.call(
            "call.play", {"call_id": call_id, "path": str(Path(path).absolute()), "loop": loop}
        )

    async def record(self, call_id: str, path: Union[str, Path, None],
                     overwrite: bool = False) -> Json:
        """``call.record``; ``path=None`` stops. A relative path is made absolute here."""
        where = None if path is None else str(Path(path).absolute())
        return await self.call(
            "call.record", {"call_id": call_id, "path": where, "overwrite": overwrite}
        )

    async def stats(self, call_id: str) -> Json:
        return await self.call("call.stats", {"call_id": call_id})

    async def list_calls(self) -> List[Json]:
        calls = await self.call("call.list")
        if not isinstance(calls, list):
            raise SrtpdError(0, f"call.list answered {calls!r}, not a list")
        return calls

    async def terminate(self, call_id: str, reason: Optional[str] = None) -> Json:
        """Ends a call; returns its final stats (its ``call.ended`` came before)."""
        params: Dict[str, Any] = {"call_id": call_id}
        if reason is not None:
            params["reason"] = reason
        return await self.call("call.terminate", params)

    async def status(self) -> Json:
        return await self.call("daemon.status")

    async def shutdown(self) -> Json:
        return await self.call("daemon.shutdown")
