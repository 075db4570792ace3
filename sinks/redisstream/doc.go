// Package redisstream is the redis_stream sink, the producer side of a
// multi-process run: it adds every record to a Redis stream that workers
// (the redis_stream source) read through a consumer group.
//
// Invariants:
//
//   - The stream is bounded without trimming: before adding a batch, Write
//     waits until the stream holds at most max_len - len(batch) entries.
//     Workers delete entries once acknowledged, so the length is exactly
//     the work outstanding (undelivered plus pending). MAXLEN trimming is
//     not used because it would silently drop the oldest entries, which
//     may be ones a dead worker still holds and another must reclaim.
//   - A nil Write means every record of the batch is in the stream. A
//     retried batch adds its records again; workers' sinks are idempotent,
//     so a duplicate costs a lookup (usually a cache hit), never a wrong row.
//   - The group is created at id 0 if missing, so entries added before the
//     first worker starts are delivered.
//   - Deduplication belongs in the producer's pipeline (the dedupe stage):
//     workers must not drop records, since a dropped entry is never
//     acknowledged.
package redisstream
