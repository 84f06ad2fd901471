"""The two probe kinds: ICMP echo (icmplib, raw or datagram socket) and TCP connect.

A prober sends probe `seq` when told and later reports `resolved(seq, rtt_ms)`
(None = lost) from the event loop. Timeouts are the pinger's business.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Callable

from icmplib import AsyncSocket, ICMPRequest, ICMPv4Socket, ICMPv6Socket
from icmplib.exceptions import ICMPSocketError, SocketUnavailableError, TimeoutExceeded
from icmplib.utils import unique_identifier

Resolved = Callable[[int, "float | None"], None]
NoteError = Callable[[str], None]


class ProbeSendError(Exception):
    """Sending a probe failed at once (e.g. no route); the probe counts as lost."""


class IcmpProber:
    # Echo reply, and the error messages that carry our request back to us.
    _TYPES: dict[int, tuple[int, dict[int, str]]] = {
        socket.AF_INET: (0, {3: "destination unreachable", 11: "time exceeded"}),
        socket.AF_INET6: (129, {1: "destination unreachable", 3: "time exceeded"}),
    }

    def __init__(self, ip: str, family: int, *, privileged: bool) -> None:
        cls = ICMPv4Socket if family == socket.AF_INET else ICMPv6Socket
        # Raises SocketPermissionError when the kernel refuses this socket kind.
        self._sock = cls(privileged=privileged)
        self._ip = ip
        self._privileged = privileged
        self._echo_reply, self._errors = self._TYPES[family]
        # With datagram sockets the kernel rewrites the id and filters replies itself.
        self._id = unique_identifier()
        self._by_wire: dict[int, tuple[int, float]] = {}
        self._async: AsyncSocket | None = None
        self._task: asyncio.Task[None] | None = None

    def begin(self, resolved: Resolved, note_error: NoteError) -> None:
        self._async = AsyncSocket(self._sock)
        self._task = asyncio.get_running_loop().create_task(self._receive(resolved, note_error))

    def send(self, seq: int, sent_at: float) -> None:
        wire = seq & 0xFFFF
        self._by_wire[wire] = (seq, sent_at)
        try:
            self._sock.send(ICMPRequest(destination=self._ip, id=self._id, sequence=wire))
        except ICMPSocketError as exc:
            self._by_wire.pop(wire, None)
            raise ProbeSendError(str(exc) or type(exc).__name__) from None

    async def _receive(self, resolved: Resolved, note_error: NoteError) -> None:
        assert self._async is not None
        me = asyncio.current_task()
        assert me is not None
        while True:
            try:
                # A long timeout: icmplib drops a packet that lands right at the limit.
                reply = await self._async.receive(None, timeout=3600)
            except TimeoutExceeded:
                reply = None
            except SocketUnavailableError:
                return
            except ICMPSocketError as exc:
                note_error(f"receive failed: {exc}")
                reply = None
                await asyncio.sleep(0.01)
            # Python 3.11's wait_for (inside icmplib) can swallow a cancel that
            # races with an arriving packet; honour it anyway.
            if me.cancelling():
                return
            if reply is None:
                continue
            now = time.monotonic()
            if self._privileged and reply.id != self._id:
                continue  # a raw socket sees every ICMP packet on the host
            if reply.type == self._echo_reply:
                entry = self._by_wire.pop(reply.sequence, None)
                if entry is not None:
                    resolved(entry[0], (now - entry[1]) * 1000.0)
            elif reply.type in self._errors:
                entry = self._by_wire.pop(reply.sequence, None)
                if entry is not None:
                    note_error(f"{self._errors[reply.type]} (code {reply.code}) for {self._ip}")
                    resolved(entry[0], None)

    async def aclose(self) -> None:
        if self._task is not None:
            # Let icmplib's receive() unwind (it unregisters the reader) before closing.
            self._task.cancel()
            await asyncio.wait([self._task], timeout=1.0)
        self.close()

    def close(self) -> None:
        if self._async is not None:
            self._async.close()
        else:
            self._sock.close()


class TcpProber:
    """Connect to ip:port; an accepted or refused (RST) connection means the host is up."""

    def __init__(self, ip: str, family: int, port: int, timeout: float) -> None:
        self._ip, self._family, self._port, self._timeout = ip, family, port, timeout
        self._tasks: set[asyncio.Task[None]] = set()
        self._resolved: Resolved | None = None
        self._note_error: NoteError | None = None

    def begin(self, resolved: Resolved, note_error: NoteError) -> None:
        self._resolved, self._note_error = resolved, note_error

    def send(self, seq: int, sent_at: float) -> None:
        task = asyncio.get_running_loop().create_task(self._connect(seq, sent_at))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, seq: int, sent_at: float) -> None:
        assert self._resolved is not None and self._note_error is not None
        loop = asyncio.get_running_loop()
        sock = socket.socket(self._family, socket.SOCK_STREAM)
        sock.setblocking(False)
        # Close with RST: no TIME_WAIT pile-up from ten connects a second.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        rtt: float | None = None
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (self._ip, self._port)), self._timeout)
            rtt = (time.monotonic() - sent_at) * 1000.0
        except ConnectionRefusedError:
            rtt = (time.monotonic() - sent_at) * 1000.0
        except TimeoutError:
            pass
        except OSError as exc:
            self._note_error(f"connect to {self._ip}:{self._port} failed: {exc.strerror or exc}")
        finally:
            sock.close()
        self._resolved(seq, rtt)

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
