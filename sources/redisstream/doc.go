// Package redisstream is the redis_stream source, the worker side of a
// multi-process run: it reads records that a producer (the redis_stream
// sink) added to a Redis stream, as one consumer of a consumer group.
//
// Invariants:
//
//   - At-least-once: an entry is acknowledged (XACK) and deleted (XDEL)
//     only in Committed, after the main sink (the inventory) committed its
//     record. A worker that dies leaves its entries pending; after
//     claim_idle any live worker takes them over (XAUTOCLAIM) and
//     processes them again. The inventory sink is idempotent, so a record
//     written twice leaves the same row. XAUTOCLAIM also hands a worker
//     its own idle entries; those still in its pipeline (emitted, not yet
//     committed) are not emitted again.
//   - Deleting acknowledged entries keeps the stream's length equal to the
//     outstanding work, which is what the producer's bound measures.
//   - Worker pipelines must not drop records (no dedupe stage): a dropped
//     record is never committed, so its entry stays pending and is
//     reclaimed forever. Deduplication happens in the producer.
//   - An entry that is not a record is emitted as a rejected record, so it
//     reaches the dead letters and is acknowledged like any other.
//   - With idle_exit set, Run returns once the stream has been empty (no
//     undelivered and no pending entry, in any worker) for that long;
//     with 0 it runs until interrupted.
package redisstream
