"""A stream's history folder: its segments and the manifests that say which of them count.

Manifests are named `<epoch>-<seq>.json` and written by atomic rename. Readers take the newest
manifest of the highest epoch that parses: a former lease holder (a lower epoch) can write files,
but never one that is read. Only atomic renames are used, no local locks, so the folder may sit
on storage several hosts share.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from sollol_otel.settings import HISTORY_DIR

_MANIFEST = re.compile(r"^(\d{12})-(\d{12})\.json$")
MANIFESTS = "manifests"
SEGMENTS = "segments"
#: Manifests kept behind the newest: a reader that listed the folder a moment ago still finds its own.
KEEP_MANIFESTS = 20
DAY_MS = 86_400_000


def default_root() -> Path:
    """SOLLOL_HISTORY_DIR, else the per-user data folder ($XDG_DATA_HOME/sollol-otel/history)."""
    configured = HISTORY_DIR.read()
    if configured:
        return Path(configured).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "sollol-otel" / "history"


def stream_folder(root: Path, stream: str) -> Path:
    """One folder per stream key, its name escaped so any key (`a/b`, `..`) stays inside `root`."""
    name = quote(stream, safe="")
    if name.startswith("."):
        name = "%2E" + name[1:]
    return root / name


@dataclass(frozen=True)
class Segment:
    """One immutable Parquet file and the stream ids and times it covers."""

    file: str
    rows: int
    events: int
    first_id: str
    last_id: str
    min_ms: int
    max_ms: int
    bytes: int
    #: segments.FORMAT of the file; manifests written before the field hold format 1 files.
    format: int = 1


@dataclass(frozen=True)
class GapRecord:
    """Entries trimmed from the stream (or lost with it) before the indexer read them."""

    after_id: str
    first_id: str | None
    missed: int | None
    reset: bool
    at_ms: int


@dataclass(frozen=True)
class Manifest:
    """What the history holds: the segments that count, where the indexer stands in the stream
    (`last_id`, and `offset`, Redis's count of entries added up to it), the gaps, and the files
    found corrupt."""

    epoch: int = 0
    seq: int = 0
    last_id: str = "0-0"
    offset: int | None = 0
    segments: tuple[Segment, ...] = ()
    gaps: tuple[GapRecord, ...] = ()
    corrupt: tuple[str, ...] = ()
    #: Segments taken out of use (compacted, past retention), with when: deleted after a grace time.
    retired: tuple[tuple[str, int], ...] = ()
    updated_ms: int = 0
    #: Corrupt or unreadable manifest files passed over when this one was read (not stored).
    skipped_manifests: int = field(default=0, compare=False)

    def to_json(self) -> bytes:
        data = asdict(self)
        del data["skipped_manifests"]
        return orjson.dumps(data, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        data: dict[str, Any] = orjson.loads(raw)
        return cls(
            epoch=int(data["epoch"]),
            seq=int(data["seq"]),
            last_id=str(data["last_id"]),
            offset=None if data["offset"] is None else int(data["offset"]),
            segments=tuple(Segment(**segment) for segment in data["segments"]),
            gaps=tuple(GapRecord(**gap) for gap in data["gaps"]),
            corrupt=tuple(str(name) for name in data["corrupt"]),
            retired=tuple((str(name), int(at)) for name, at in data["retired"]),
            updated_ms=int(data["updated_ms"]),
        )

    def next(self, epoch: int, **changes: Any) -> Manifest:
        """The manifest that follows this one in `epoch` (its first one restarts the count)."""
        seq = self.seq + 1 if epoch == self.epoch else 0
        return replace(self, epoch=epoch, seq=seq, skipped_manifests=0, **changes)

    @property
    def events(self) -> int:
        return sum(segment.events for segment in self.segments)

    @property
    def bytes(self) -> int:
        return sum(segment.bytes for segment in self.segments)


class Store:
    """The folder of one stream's history."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.manifests = folder / MANIFESTS
        self.segments = folder / SEGMENTS

    def create(self) -> None:
        self.manifests.mkdir(parents=True, exist_ok=True)
        self.segments.mkdir(parents=True, exist_ok=True)

    def manifest_names(self) -> list[tuple[int, int, str]]:
        """(epoch, seq, name) of every manifest file, oldest first."""
        try:
            names = os.listdir(self.manifests)
        except FileNotFoundError:
            return []
        found = [(int(m.group(1)), int(m.group(2)), name) for name in names if (m := _MANIFEST.match(name))]
        return sorted(found)

    def newest(self) -> Manifest | None:
        """The newest manifest that parses, of the highest epoch; None before the first commit.

        A manifest that does not parse (a disk error, a hand edit) is passed over and counted.
        """
        names = self.manifest_names()
        skipped = 0
        for _, _, name in reversed(names):
            try:
                manifest = Manifest.from_json((self.manifests / name).read_bytes())
            except FileNotFoundError:  # removed as an old one while we listed: a newer one exists
                continue
            except (ValueError, KeyError, TypeError):
                skipped += 1
                continue
            return replace(manifest, skipped_manifests=skipped)
        return None

    def commit(self, manifest: Manifest) -> None:
        """Write `manifest` under its own name by atomic rename, then drop old ones of its epoch.

        Never overwrites: the name is unique to the lease holder's epoch and sequence.
        """
        name = f"{manifest.epoch:012d}-{manifest.seq:012d}.json"
        fd, staging = tempfile.mkstemp(dir=self.manifests, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(manifest.to_json())
                out.flush()
                os.fsync(out.fileno())
            os.replace(staging, self.manifests / name)
        except BaseException:
            Path(staging).unlink(missing_ok=True)
            raise
        for epoch, seq, old in self.manifest_names()[:-KEEP_MANIFESTS]:
            if (epoch, seq) < (manifest.epoch, manifest.seq):
                (self.manifests / old).unlink(missing_ok=True)

    def segment_path(self, name: str) -> Path:
        return self.segments / name
