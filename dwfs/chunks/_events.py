"""Events an operator should hear of, as ZFS's ZED hands them to zedlets: a
device going missing, faulted or coming back, checksum errors, a scrub or a
resilver ending, the pool nearly full. Each is logged (and so reaches the
journal when the mount runs under systemd) and, if a hook was given, handed to
it as one JSON object on its stdin.

Hooks run one at a time, in the order of the events, each for at most
HOOK_SECONDS (then killed), from a task of their own: a hook that fails, hangs
or is slow never holds up the filesystem or whoever emitted the event. Events
wait for the hook in a bounded queue; when it is full the newest are logged
but not handed over, and the next event handed over says how many were.
"""

from __future__ import annotations

import collections
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import trio

log = logging.getLogger(__name__)

HOOK_SECONDS = 10.0
"""The longest one run of the hook may take before it is killed."""
QUEUE = 64
"""Events waiting for the hook at most."""
NEARLY_FULL = 0.9
"""The share of the pool's space used past which it is reported nearly full."""
TROUBLE = frozenset({"device_missing", "device_faulted", "checksum_errors", "pool_nearly_full"})
"""Events logged as warnings; the others (a job done, a device back) as information."""
RECENT = 20
"""Events kept for status."""
WATCH_EVERY = 5.0
"""Seconds between looks at the devices' states and error counters."""


class Events:
    """Where a pool's events go: the log, and a hook if there is one."""

    def __init__(self, pool: str, hook: Sequence[str] | None = None) -> None:
        self.pool = pool
        self.hook = list(hook) if hook else None
        self._send, self._receive = trio.open_memory_channel[dict[str, Any]](QUEUE)
        self._dropped = 0
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT)
        """The last events, newest last, for `dwfsctl status` (as `zpool events`)."""

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Log an event and queue it for the hook (never waiting)."""
        event = {"event": kind, "pool": self.pool, "time": time.time(), **fields}
        self.recent.append(event)
        level = logging.WARNING if kind in TROUBLE else logging.INFO
        log.log(level, "event %s: %s", kind, json.dumps(fields, sort_keys=True))
        if self.hook is not None:
            if self._dropped:
                event["dropped_before"] = self._dropped
            try:
                self._send.send_nowait(event)
                self._dropped = 0
            except trio.WouldBlock:
                self._dropped += 1
        return event

    async def run_hook(self) -> None:
        """Hand queued events to the hook, one run each, until cancelled."""
        if self.hook is None:
            return
        async for event in self._receive:
            await self._run_once(self.hook, event)

    async def _run_once(self, hook: list[str], event: dict[str, Any]) -> None:
        data = json.dumps(event, sort_keys=True).encode() + b"\n"
        try:
            with trio.fail_after(HOOK_SECONDS):
                done = await trio.run_process(
                    hook,
                    stdin=data,
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                )
        except trio.TooSlowError:
            log.error(
                "event hook %s took over %.0f s on %s: killed",
                hook[0],
                HOOK_SECONDS,
                event["event"],
            )
            return
        except OSError as exc:
            log.error("event hook %s could not run: %s", hook[0], exc)
            return
        if done.returncode:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            log.error(
                "event hook %s failed on %s (exit %d): %s",
                hook[0],
                event["event"],
                done.returncode,
                tail[0][:200],
            )


class PoolWatch:
    """Turns changes in a pool's status into events: a look every WATCH_EVERY
    seconds at its devices and capacity, compared with the last one."""

    def __init__(self, events: Events) -> None:
        self.events = events
        self._devices: dict[str, dict[str, Any]] = {}
        self._full = False

    def look(self, status: dict[str, Any]) -> None:
        """Emit what changed since the last look (the first look only remembers,
        but for what is already wrong)."""
        first = not self._devices
        for device in status["devices"]:
            before = self._devices.get(device["uuid"])
            self._devices[device["uuid"]] = device
            if before is None:
                if first and device["state"] != "online":
                    self._state_event(device)
                continue
            if device["state"] != before["state"]:
                self._state_event(device)
            errors = device["checksum_errors"] + device["read_errors"]
            was = before["checksum_errors"] + before["read_errors"]
            if errors > was:
                self.events.emit(
                    "checksum_errors",
                    device=device["path"],
                    new=errors - was,
                    total=errors,
                )
        capacity = status["capacity"]
        full = bool(capacity["size"]) and capacity["used"] >= NEARLY_FULL * capacity["size"]
        if full and not self._full:
            self.events.emit("pool_nearly_full", used=capacity["used"], size=capacity["size"])
        self._full = full

    def _state_event(self, device: dict[str, Any]) -> None:
        kind = {"online": "device_online", "faulted": "device_faulted"}.get(
            device["state"], "device_missing"
        )
        self.events.emit(kind, device=device["path"], reason=device["reason"])
