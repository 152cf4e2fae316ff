"""The Redis keys of a stream's indexer lease: named here, apart from the lease's code, so that the
terminal viewer's quick path can ask whether anyone indexes a stream without importing redis-py."""

from __future__ import annotations


def lease_keys(stream: str) -> list[str]:
    """The lease, the fencing counter and the holder's description, named after the stream and in
    its Redis Cluster slot (one script touches all three, and the client follows the stream's slot):
    the stream's own hash tag if it has one, else its whole name as the tag."""
    start = stream.find("{")
    end = stream.find("}", start + 1) if start >= 0 else -1
    base = stream if end > start + 1 else "{" + stream + "}"
    return [f"{base}:history:lease", f"{base}:history:epoch", f"{base}:history:holder"]
