"""One stream entry as one row of a Parquet segment, and back.

A row keeps what a reader filters and counts on as plain columns, computed here in Python with
the same code `EventFilter.matches` uses (lower-cased text, the node, the upper-cased type), so a
query is a column scan whose answer equals decoding every event; the six texts `q` searches are
also kept joined in one column (`search_l`: one scan, not six). The event itself is kept as its
JSON (`doc`); the random ids that dominate its size (trace, span and event ids, lower-case hex)
move to binary columns and leave an empty string in their place, which keeps the keys' order
when the event is rebuilt.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from sollol_otel.history.store import Segment
from sollol_otel.redis.entries import StreamEntry
from sollol_otel.redis.stream import stream_key
from sollol_otel.wire import Skipped, event_from_fields

if TYPE_CHECKING:
    import duckdb

#: Wire keys stored as bytes when they hold lower-case hex of the given length (in characters).
COMPACT_IDS = {"trace_id": ("trace", 32), "span_id": ("span", 16), "event_id": ("eid", 32)}
_HEX = re.compile(r"[0-9a-f]+")
_SURROGATES = re.compile("[\ud800-\udfff]")

#: Columns of a segment, in order, with their DuckDB types.
COLUMNS: dict[str, str] = {
    "ms": "BIGINT",
    "seq": "BIGINT",
    "skip": "VARCHAR",
    "event_type": "VARCHAR",
    "etype_u": "VARCHAR",
    "model": "VARCHAR",
    "backend": "VARCHAR",
    "node": "VARCHAR",
    "instance": "VARCHAR",
    "reason": "VARCHAR",
    "model_l": "VARCHAR",
    "backend_l": "VARCHAR",
    "node_l": "VARCHAR",
    "instance_l": "VARCHAR",
    "reason_l": "VARCHAR",
    "message_l": "VARCHAR",
    "trace_l": "VARCHAR",
    "trace": "BLOB",
    "span": "BLOB",
    "eid": "BLOB",
    "doc": "VARCHAR",
    "search_l": "VARCHAR",
}
#: Written by DuckDB from the lower-cased columns: the texts `q` searches, joined by SEPARATOR.
COMPUTED = {"search_l"}
#: Columns `q` searches, each lower-cased (EventFilter.q is).
SEARCHED = ("model_l", "backend_l", "node_l", "reason_l", "message_l", "instance_l")
#: Joins the searched texts: a `q` without it matches the joined text exactly when it matches one
#: of them. (A `q` holding it is searched column by column.)
SEPARATOR = "\x1f"
_SEARCH_SQL = f"concat_ws(chr({ord(SEPARATOR)}), {', '.join(SEARCHED)})"
#: The first layout with `search_l`; files before it (1) are searched column by column, and
#: given the column when compaction merges them.
JOINED_FORMAT = 2
#: The layout of the files written now.
FORMAT = JOINED_FORMAT
BINARY = tuple(column for column, kind in COLUMNS.items() if kind == "BLOB")
#: Rows per Parquet row group: small enough that a time range skips most of a day's file.
ROW_GROUP_ROWS = 122_880
PARQUET_OPTIONS = f"FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS}"


def _storable(text: str | None) -> str | None:
    """Text Parquet can hold (UTF-8): lone surrogates, which JSON escapes can carry, become U+FFFD."""
    if text is None:
        return None
    return _SURROGATES.sub("\ufffd", text) if not text.isascii() else text


def _lower(text: str | None) -> str | None:
    return None if text is None else _storable(text.lower())


def _blank_none(text: str | None) -> str | None:
    """Every filter treats a missing value and an empty one alike; counts name both MISSING."""
    return _storable(text) if text else None


def _dumps(fields: dict[str, Any]) -> str:
    try:
        return orjson.dumps(fields).decode()
    except TypeError:  # lone surrogates: json escapes them, and `wire` reads them back the same
        return json.dumps(fields, separators=(",", ":"))


def row_of(entry: StreamEntry) -> dict[str, Any]:
    """The row of one entry: a skipped one keeps only its id and why it was skipped."""
    ms, seq = stream_key(entry.id)
    item = entry.item
    if isinstance(item, Skipped):
        return {"ms": ms, "seq": seq, "skip": _storable(item.reason)}
    fields = dict(item.fields)
    row: dict[str, Any] = {"ms": ms, "seq": seq}
    for key, (column, length) in COMPACT_IDS.items():
        value = fields.get(key)
        if isinstance(value, str) and len(value) == length and _HEX.fullmatch(value):
            row[column] = value  # hex in the staging file; unhex() makes it bytes in Parquet
            fields[key] = ""
    model, backend, node = item.model, item.backend, item.node
    instance, reason, trace = item.instance_id, item.text("reason"), item.trace_id
    row.update(
        event_type=_storable(item.event_type),
        etype_u=_storable(item.event_type.upper()),
        model=_blank_none(model),
        backend=_blank_none(backend),
        node=_blank_none(node),
        instance=_blank_none(instance),
        reason=_blank_none(reason),
        model_l=_lower(model),
        backend_l=_lower(backend),
        node_l=_lower(node),
        instance_l=_lower(instance),
        reason_l=_lower(reason),
        message_l=_lower(item.message),
        trace_l=None if "trace" in row or not trace else _lower(trace),
        doc=_dumps(fields),
    )
    return row


def entry_of(
    ms: int, seq: int, skip: str | None, doc: str | None, ids: Sequence[bytes | None]
) -> StreamEntry:
    """The entry a row was made from: what the stream reader would have decoded."""
    entry_id = f"{ms}-{seq}"
    if skip is not None or doc is None:
        return StreamEntry(entry_id, Skipped(skip or "no event stored"))
    try:
        fields = orjson.loads(doc)
    except orjson.JSONDecodeError:
        fields = json.loads(doc)
    for (key, _), value in zip(COMPACT_IDS.items(), ids, strict=True):
        if value is not None:
            fields[key] = value.hex()
    return StreamEntry(entry_id, event_from_fields(fields))


#: The SELECT that rebuilds entries: columns `entry_of` takes, in its order.
ENTRY_COLUMNS = "ms, seq, skip, doc, " + ", ".join(column for column, _ in COMPACT_IDS.values())


def _engine() -> Any:
    """DuckDB, imported on first use: its C++ extension (`_duckdb`) alone where there is one. The
    `duckdb` package of DuckDB 2 re-exports that module's connections and errors and adds a
    relational API this code does not use, which is two thirds of its import (45 against 140-200 ms
    here, most of what history adds to `sollol-otel stats`, BENCHMARKS.md)."""
    try:
        import _duckdb
    except ImportError:
        import duckdb

        return duckdb
    return _duckdb


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for reading and writing segments."""
    connection: duckdb.DuckDBPyConnection = _engine().connect(
        config={"threads": os.cpu_count() or 1, "preserve_insertion_order": True}
    )
    return connection


def write_segment(
    connection: duckdb.DuckDBPyConnection, rows: Sequence[dict[str, Any]], path: Path
) -> Segment:
    """Write rows (in id order) to `path` atomically: a staging file, then a rename.

    The staging file is newline-delimited JSON that DuckDB reads with a fixed schema, so no
    Arrow or pandas is needed. StorageError (a full disk, a read-only folder) is raised, leaving at
    most a `.tmp` file that readers never look at.
    """
    staging = path.with_name(path.name + ".rows.tmp")
    partial = path.with_name(path.name + ".tmp")
    try:
        with staging.open("wb") as out:
            out.writelines(orjson.dumps(row) + b"\n" for row in rows)
        connection.execute(
            f"COPY (SELECT {_select_columns()} FROM read_json(?, format='newline_delimited', "
            f"columns={_json_columns()})) TO '{_sql_path(partial)}' ({PARQUET_OPTIONS})",
            [str(staging)],
        )
        _publish(partial, path)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        raise _disk_error(exc) from exc
    finally:
        staging.unlink(missing_ok=True)
    first, last = rows[0], rows[-1]
    return Segment(
        file=path.name,
        rows=len(rows),
        events=sum(1 for row in rows if row.get("skip") is None),
        first_id=f"{first['ms']}-{first['seq']}",
        last_id=f"{last['ms']}-{last['seq']}",
        min_ms=min(row["ms"] for row in rows),
        max_ms=max(row["ms"] for row in rows),
        bytes=path.stat().st_size,
        format=FORMAT,
    )


def merge_segments(
    connection: duckdb.DuckDBPyConnection, sources: Sequence[Segment], folder: Path, path: Path
) -> int:
    """Write the rows of `sources` (given in id order, files in `folder`) into one file at `path`,
    in the current FORMAT; its size."""
    partial = path.with_name(path.name + ".tmp")
    files = [str(folder / source.file) for source in sources]
    if all(source.format == FORMAT for source in sources):
        select = "*"
    else:
        stored = ", ".join(column for column in COLUMNS if column not in COMPUTED)
        select = f"{stored}, {_SEARCH_SQL} AS search_l"
    try:
        connection.execute(
            f"COPY (SELECT {select} FROM read_parquet(?, union_by_name = true)) TO '{_sql_path(partial)}' "
            f"({PARQUET_OPTIONS})",
            [files],
        )
        _publish(partial, path)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        raise _disk_error(exc) from exc
    return path.stat().st_size


def _publish(partial: Path, path: Path) -> None:
    """Make a written file durable, then give it its name: a crash never leaves a named file short."""
    with partial.open("rb") as written:
        os.fsync(written.fileno())
    os.replace(partial, path)


class StorageError(Exception):
    """Writing to the history folder failed (a full disk, a read-only folder, a file size limit).

    Not an OSError: Redis's connection errors are OSErrors, and the two are handled apart.
    """


def _disk_error(exc: Exception) -> Exception:
    """A failed write, from Python or DuckDB (its own IOException), as a StorageError."""
    if isinstance(exc, (OSError, _engine().IOException)):
        return StorageError(f"{type(exc).__name__}: {exc}")
    return exc


def _sql_path(path: Path) -> str:
    """A path inside a SQL string literal (COPY ... TO takes no parameter)."""
    return str(path).replace("'", "''")


def _select_columns() -> str:
    def select(column: str) -> str:
        if column in COMPUTED:
            return f"{_SEARCH_SQL} AS {column}"
        return f"unhex({column}) AS {column}" if column in BINARY else column

    return ", ".join(select(column) for column in COLUMNS)


def _json_columns() -> str:
    stored = (column for column in COLUMNS if column not in COMPUTED)
    kinds = {column: "VARCHAR" if COLUMNS[column] == "BLOB" else COLUMNS[column] for column in stored}
    return "{" + ", ".join(f"'{column}': '{kind}'" for column, kind in kinds.items()) + "}"
