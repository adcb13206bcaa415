"""Bounds that ZeroMQ does not give: connection count, and memory held by unfinished messages.

ZeroMQ caps each frame (ZMQ_MAXMSGSIZE) but buffers every frame of a multipart message
until its last frame arrives, so a peer that never finishes a message could grow the
daemon without bound; and it accepts any number of idle connections, so idle peers could
use up the file descriptors. The guard watches the front socket's connections (its
monitor gives each one's file descriptor; every message names the descriptor it came
on) and shuts down the offenders' sockets, which makes ZeroMQ drop them and their
buffers:
- more connections than `max_connections`: the ones that never sent a whole message;
- memory above the budget: every connection that has not finished a message for
  `stall_s` seconds and is not waiting for the reply to one.
Memory the jobs explain (their frames, working set and network, the leased buffers, and
what the allocator keeps after them, up to the largest job's need) never counts.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass, field

import zmq
from zmq.utils.monitor import recv_monitor_message

from colorize_backend.daemon import memory

LOG = logging.getLogger("colorize.guard")
SUSPECT_S = 1.5  # how long a client whose connection closed keeps being probed
PROBE_EVERY_S = 0.1


@dataclass
class Connection:
    accepted: float
    last_message: float | None = None
    peers: set[bytes] = field(default_factory=set)  # the clients (routing ids) it carried


@dataclass
class Guard:
    """Tracks the front socket's connections; `tick()` enforces the bounds."""

    front: zmq.Socket
    max_connections: int = 256
    memory_budget: int = 1 << 30  # bytes above the baseline not explained by jobs
    stall_s: float = 5.0
    connections: dict[int, Connection] = field(default_factory=dict)
    baseline: int = 0
    suspects: dict[bytes, float] = field(default_factory=dict)  # client -> probe until
    next_probe: float = 0.0
    peak_job_bytes: int = 0  # the most the jobs ever accounted for
    retained: int = 0  # what the allocator kept after the last jobs (explained by them)

    def __post_init__(self) -> None:
        events = zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_CLOSED
        self.monitor = self.front.get_monitor_socket(events)
        self.baseline = memory.rss_bytes()

    def close(self) -> None:
        self.front.disable_monitor()
        self.monitor.close(linger=0)

    def watch(self, poller: zmq.Poller) -> None:
        poller.register(self.monitor, zmq.POLLIN)

    def on_monitor_event(self) -> set[bytes]:
        """Track connections; returns the clients whose connection just closed, so that the
        daemon checks at once whether they are still there (a descriptor can be reused by a
        new connection before this event is read, so this alone proves nothing)."""
        event = recv_monitor_message(self.monitor, zmq.NOBLOCK)
        fd = int(event["value"])
        if event["event"] == zmq.EVENT_ACCEPTED:
            now = time.monotonic()
            known = self.connections.get(fd)
            # This event is read after the front socket's messages, so the connection's first
            # message may already have recorded it: keep that record (not an older one of a
            # closed connection whose descriptor was reused).
            if known is None or known.last_message is None or now - known.last_message > 1.0:
                self.connections[fd] = Connection(now)
            if len(self.connections) > self.max_connections:
                self._shed_idle()
            return set()
        gone = self.connections.pop(fd, None)
        peers = gone.peers if gone else set()
        until = time.monotonic() + SUSPECT_S
        self.suspects.update(dict.fromkeys(peers, until))
        return peers

    def suspects_to_probe(self, now: float) -> set[bytes]:
        """Clients whose connection closed a moment ago, due for another probe: ZeroMQ
        forgets a closed connection's route on its own thread, so the first probe can
        still get through; probing for SUSPECT_S more tells a gone client for certain."""
        self.suspects = {peer: until for peer, until in self.suspects.items() if until > now}
        if not self.suspects or now < self.next_probe:
            return set()
        self.next_probe = now + PROBE_EVERY_S
        return set(self.suspects)

    def on_message(self, frame: zmq.Frame, peer: bytes) -> None:
        """A whole message from peer arrived on this frame's connection."""
        try:
            fd = frame.get(zmq.SRCFD)
        except zmq.ZMQError:
            return
        now = time.monotonic()
        connection = self.connections.setdefault(fd, Connection(now))
        connection.last_message = now
        connection.peers.add(peer)

    def tick(self, explained: int, waiting: set[bytes]) -> None:
        """Check the memory bound; `explained` is what jobs and leased buffers account for,
        `waiting` the clients that wait for a reply (their connections are never cut)."""
        self.peak_job_bytes = max(self.peak_job_bytes, explained)
        unexplained = memory.rss_bytes() - self.baseline - explained - self.retained
        if unexplained <= self.memory_budget:
            return
        now = time.monotonic()
        stalled = [
            fd
            for fd, c in self.connections.items()
            if now - (c.last_message or c.accepted) > self.stall_s and not c.peers & waiting
        ]
        if stalled:
            LOG.warning(
                "%.0f MB held outside any job: closing %d connection(s) that sent no whole "
                "message for %.0f s",
                unexplained / 1e6,
                len(stalled),
                self.stall_s,
            )
            for fd in stalled:
                self._shut(fd)
            memory.trim()

    def after_jobs(self) -> None:
        """The jobs are done and memory trimmed: what is still held above the baseline is the
        allocator's retention after them, explained up to the most the jobs ever needed."""
        self.retained = min(max(memory.rss_bytes() - self.baseline, 0), self.peak_job_bytes)

    def _shed_idle(self) -> None:
        idle = sorted(
            (c.accepted, fd) for fd, c in self.connections.items() if c.last_message is None
        )
        excess = len(self.connections) - self.max_connections
        for _, fd in idle[: max(excess, 0)]:
            LOG.warning("more than %d connections: closing an idle one", self.max_connections)
            self._shut(fd)

    def _shut(self, fd: int) -> None:
        """Shut the connection down under ZeroMQ's feet; it then drops the peer and its data."""
        self.connections.pop(fd, None)
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            sock.detach()  # ZeroMQ owns the descriptor: never close it here
