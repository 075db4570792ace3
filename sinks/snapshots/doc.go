// Package snapshots writes the snapshot columns of session_summaries
// (snapshot_asn, snapshot_country, snapshot_ip_type, enrichment_at, and a
// NULL source_ip) from ip_inventory, in two shapes:
//
//   - Sink, the "snapshots" sink: after the inventory sink committed a
//     batch of addresses, it fills the snapshots of those addresses'
//     sessions with one statement per batch. Used as a side sink of the
//     refresh and backfill pipelines.
//   - Backfill: the historical sweep over a window of sessions, in chunks
//     keyset-paginated on session_id, one set-based UPDATE … FROM per chunk,
//     with a checkpoint row in cowrie_enrich_checkpoints updated atomically
//     with the chunk, so a resumed run neither skips nor rewrites a session.
//
// Invariants (both shapes share the SQL in sql.go):
//
//   - A session lacks a snapshot while enrichment_at is NULL; only such
//     sessions are touched, and every column is COALESCEd with its stored
//     value, so a snapshot already written is never overwritten
//     (upstream's first-writer-wins rule).
//   - A snapshot is taken only from an inventory row that was enriched
//     (enrichment_updated_at set); enrichment_at is copied from it, so a
//     written session never qualifies again.
//   - Country is ip_inventory.geo_country when it is two upper-case letters
//     other than XX; otherwise NULL (never a sentinel), which keeps
//     upstream's CHECK (snapshot_country ~ '^[A-Z]{2}$') satisfied.
//   - snapshot_ip_type is enrichment.ip_classification.ip_type, or the
//     literal "bogon" for a bogon; a bogon never gets an ASN (its inventory
//     row has none).
//   - A session's address is store.SessionIP (source_ip, else the canonical
//     first-seen address in its enrichment JSON); a NULL source_ip is filled
//     with the inventory address, which keeps upstream's foreign key valid.
package snapshots
