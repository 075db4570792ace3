// Package cache provides the cache stage: placed before the provider
// stages, it settles a record's maxmind, cymru and greynoise sources from
// answers fetched earlier, so providers are asked only about what no tier
// holds fresh.
//
// Tiers, asked in this order, each once per batch and only about what the
// tiers above did not answer:
//
//   - L1, Redis (redis_url): key <key_prefix>:<source>:<ip>, the answer's
//     JSON as value, expiring when the answer goes stale. One MGET per batch.
//   - L2, the database: the inventory's own ip_inventory.enrichment.<source>
//     and enrichment_cache rows (service = source, cache_key = address),
//     which hold "not found" answers and back-filled file answers. One query
//     per table per batch.
//   - L3, files (file_dir) in upstream cowrieprocessor's layout
//     <dir>/<source>/<sha256(ip)[:2]>/<sha256(ip)>.json with upstream's
//     JSON keys, so an existing upstream cache directory is reused.
//
// Once told what the stages after it ask (pipeline.AskListener), the
// cache looks up only those sources, and Cymru below Redis only where the
// MaxMind answer found so far has no ASN: the cymru stage asks about no
// other. A cache never told looks up every source.
//
// Invariants the stage keeps:
//
//   - An answer is used only while younger than ttl.<source> (negative_ttl
//     for "not found"), its age measured from its cached_at; a file without
//     cached_at is dated by its mtime, an enrichment_cache row by created_at.
//     An answer of unknown age is never used.
//   - A hit settles the source with Record.SetCached (nil value for "not
//     found"); the ASN is then rebuilt, MaxMind's over Cymru's.
//   - A hit in a lower tier is copied to the tiers above (L2/L3 to Redis,
//     L3 to enrichment_cache). Answers providers gave in this run reach
//     Redis and the files only after the sink committed them (Committed).
//   - Every tier is optional and best effort: an unreachable Redis, a
//     database error, an unreadable or corrupt entry or a full disk never
//     fails the run. Each kind of problem is counted (cache_errors) and
//     warned about once per run. After a failed Redis call the stage
//     leaves Redis alone for 30s and goes on with the other tiers.
//   - New makes no connection; Redis is dialled on first use.
//
// Counters added to the run's progress: cache_hits and cache_misses (per
// record and source), cache_hits_<source>, cache_misses_<source>, l1_hits,
// l2_hits, l3_hits, cache_errors (of which cache_corrupt) and cache_writes.
package cache
