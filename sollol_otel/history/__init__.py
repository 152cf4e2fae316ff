"""History at any range: an indexer copies the routing stream, exactly once, into immutable Parquet
segments, and `History` answers over those segments plus the stream's newest entries.

Below `web/` and `cli/`, above `redis/`; the recording path never imports it. DuckDB is imported
only when a segment is written or queried, so `tail` of the hot window does not pay for it.

- `history.query.History`: `await History.open(client, stream)` (None until an indexer has
  committed once: try again later), then `stats`, `timeline`, `span`, `page`, `events`,
  `start_ms` and `status`; keep one per process.
- `history.indexer.Indexer` (in a task) or `IndexerThread` (a server's own thread): the writer.
- `history.bulk.import_entries`: entries straight into segments (benchmarks).
"""
