"""Change notices over Redis: a write on one server wakes the other servers' followers at once.

The store stays the only source of truth: every write is stored (and acknowledged) first, and
each server's follower (`serendip.service.follower`) reads what the others wrote. Without
notices the follower looks every `Settings.follow_store_s` seconds, so another server sees an
event up to that late. With `Settings.redis_url` set, a server that stored a write publishes
"changed" on a Redis channel named after the store, and every other server's follower looks at
once: the delay drops to the store query's few milliseconds.

Redis carries no data, only the wake-up, so nothing is lost when it is away: a lost notice
means the next regular look applies the change. Where Redis is absent or unreachable the
servers poll as without it (a warning names the URL; the subscriber tries again every
`RETRY_S` seconds). Writes made in a burst are coalesced into one notice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid

from serendip.errors import ConfigError
from serendip.service.server import redacted_url

__all__ = ["RETRY_S", "ChangeNotices", "channel_for", "check_client"]

log = logging.getLogger("serendip.service")

#: Seconds between two attempts to reach an unreachable Redis.
RETRY_S = 30.0


def check_client() -> None:
    """`ConfigError` when the redis client (the `redis` extra) is not installed."""
    try:
        import redis  # noqa: F401
    except ImportError:
        raise ConfigError(
            "SERENDIP_REDIS_URL is set but the redis client is not installed: "
            "pip install 'serendip[redis]'"
        ) from None


def channel_for(db_url: str) -> str:
    """The channel of the servers on one store (several installations may share a Redis)."""
    return "serendip:changes:" + hashlib.sha256(db_url.encode()).hexdigest()[:16]


class ChangeNotices:
    """Publish this process's writes and wait for the others' (see the module docstring).

    `changed()` is cheap and never blocks (a background thread publishes); `wait(timeout)`
    returns True as soon as another process's notice arrives, else False after `timeout`.
    """

    def __init__(self, url: str, channel: str) -> None:
        check_client()
        import redis

        self.url, self.channel = url, channel
        self.origin = uuid.uuid4().hex  # this process: its own notices do not wake it
        self._client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self._pending = threading.Event()
        self._woken = threading.Event()
        self._closed = threading.Event()
        self._warned_at = -RETRY_S
        #: notices received from other processes, and published by this one
        self.received = 0
        self.published = 0
        self._threads = [
            threading.Thread(target=self._publish_loop, name="serendip-notices-out", daemon=True),
            threading.Thread(target=self._listen_loop, name="serendip-notices-in", daemon=True),
        ]
        for t in self._threads:
            t.start()

    # -------------------------------------------------------------- publish
    def changed(self) -> None:
        """This process stored a write the others should apply."""
        self._pending.set()

    def _publish_loop(self) -> None:
        while not self._closed.is_set():
            if not self._pending.wait(1.0):
                continue
            self._pending.clear()
            try:
                self._client.publish(self.channel, self.origin)
                self.published += 1
            except Exception as exc:  # Redis away: the followers' regular looks apply it
                self._warn(exc)

    # -------------------------------------------------------------- receive
    def wait(self, timeout: float) -> bool:
        """True when another process announced a write within `timeout` seconds."""
        woken = self._woken.wait(timeout)
        self._woken.clear()
        return woken

    def _listen_loop(self) -> None:
        while not self._closed.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                log.info("following the store's changes through Redis (%s)", self.channel)
                while not self._closed.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    data = message.get("data")
                    origin = data.decode() if isinstance(data, bytes) else str(data)
                    if origin != self.origin:
                        self.received += 1
                        self._woken.set()
            except Exception as exc:
                self._warn(exc)
                self._closed.wait(RETRY_S)
            finally:
                try:
                    pubsub.close()
                except Exception:  # closing a broken connection
                    log.debug("closing the Redis subscription failed", exc_info=True)

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= RETRY_S:
            self._warned_at = now
            log.warning(
                "Redis at %s is unreachable (%s): servers see each other's writes at the "
                "store's polling interval until it is back",
                redacted_url(self.url),
                exc,
            )

    def close(self) -> None:
        self._closed.set()
        self._pending.set()
        for t in self._threads:
            t.join(timeout=3)
        self._client.close()
