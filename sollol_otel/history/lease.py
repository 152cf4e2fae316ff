"""The one-indexer-per-stream lease in Redis, across processes and hosts.

SET NX PX takes it, a token-checked PEXPIRE renews it; taking it also INCRs a fencing epoch, so
whatever a former holder writes after losing it carries a lower epoch than the new holder's, and
readers never read it (see `store`). The holder publishes its history folder beside the lease,
so readers on the same host find the segments without configuration.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio

from sollol_otel.history.keys import lease_keys
from sollol_otel.wire import as_text

_log = logging.getLogger(__name__)

#: How long a lease outlives its holder's last renewal: another process takes over after this.
LEASE_MS = 6000

_ACQUIRE = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local epoch = redis.call('incr', KEYS[2])
  redis.call('del', KEYS[3])
  redis.call('hset', KEYS[3], 'token', ARGV[1], 'epoch', epoch, 'dir', ARGV[3],
             'host', ARGV[4], 'pid', ARGV[5])
  redis.call('pexpire', KEYS[3], ARGV[2])
  return epoch
end
return 0
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  redis.call('pexpire', KEYS[3], ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('del', KEYS[1], KEYS[3])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Holder:
    """Who indexes a stream, as published beside the lease."""

    epoch: int
    directory: Path
    host: str
    pid: int


async def holder(client: redis.asyncio.Redis, stream: str) -> Holder | None:
    """The current holder, or None when no indexer holds the lease, or when this reader's ACL may not
    read it (it then finds the history through SOLLOL_HISTORY_DIR)."""
    try:
        raw = await client.hgetall(lease_keys(stream)[2])
    except redis.exceptions.NoPermissionError:
        return None
    if not raw:
        return None
    fields = {as_text(key): as_text(value) for key, value in raw.items()}
    return Holder(int(fields["epoch"]), Path(fields["dir"]), fields["host"], int(fields["pid"]))


class Lease:
    """One process's claim on indexing one stream."""

    def __init__(
        self, client: redis.asyncio.Redis, stream: str, directory: Path, *, lease_ms: int = LEASE_MS
    ) -> None:
        self._client = client
        self._keys = lease_keys(stream)
        self._directory = directory
        self.lease_ms = lease_ms
        self.token = secrets.token_hex(16)
        #: The fencing epoch of the current hold; 0 while not held.
        self.epoch = 0

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it; on success `epoch` is higher than any before."""
        epoch = await self._client.eval(
            _ACQUIRE,
            3,
            *self._keys,
            self.token,
            self.lease_ms,
            str(self._directory),
            socket.gethostname(),
            os.getpid(),
        )
        self.epoch = int(epoch)
        return self.epoch > 0

    async def renew(self) -> bool:
        """Extend the hold; False when it was lost (expired and perhaps taken by another)."""
        renewed = await self._client.eval(_RENEW, 3, *self._keys, self.token, self.lease_ms)
        if not renewed:
            self.epoch = 0
        return bool(renewed)

    async def release(self) -> None:
        """Give the lease up now, so another process takes over at once rather than after expiry; where
        Redis refuses (gone, or an ACL without EVAL), the lease simply expires."""
        try:
            await self._client.eval(_RELEASE, 3, *self._keys, self.token)
        except redis.exceptions.RedisError as exc:
            _log.debug("history lease not released (it expires by itself): %s", type(exc).__name__)
        self.epoch = 0
