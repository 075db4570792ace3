// Package inventory is the main sink of an enrichment run: it upserts one
// ip_inventory row per address, the asn_inventory rows those rows point at,
// and keeps records that can never be stored in cowrie_enrich_dead_letters.
//
// Invariants it keeps:
//
//   - One transaction per batch: a nil error from Write means every record
//     of the batch is committed, as an inventory row or as a dead letter.
//   - One bad row never fails its batch: when the database refuses the batch
//     for a data error, the rows are retried one at a time under savepoints,
//     and each refused row becomes a dead letter (stage "inventory"). A
//     connection-level error (database gone, context cancelled) is returned
//     instead and nothing is committed.
//   - Enrichment JSON is merged at the top level: the keys a run refreshed
//     replace the stored ones whole, every other key is kept, and "_meta"
//     always carries all nine provenance keys.
//   - first_seen, last_seen and session_count are set exactly from the
//     record's sessions (never incremented), so writing a batch twice gives
//     the same rows apart from updated_at and _meta.
//   - An asn_inventory row exists before an ip_inventory row points at it;
//     ASN rows are written in ascending order, and their organisation data
//     is first-writer-wins. The counters (unique_ip_count,
//     total_session_count) of every ASN a batch touches, including one an
//     address moved away from, change in the batch's transaction: the
//     first time a run touches the ASN they are recounted from
//     ip_inventory, later they move by the batch's changes. SQLite applies
//     those changes to the row; PostgreSQL appends them to
//     cowrie_enrich_asn_pending, and the sink's first batch, every 20th
//     after it and Close add them to the counters (a fold). So counters
//     plus pending changes are exact at every commit, the counters
//     themselves lag a run by at most 20 batches, and they are exact when
//     it ends; a killed run's changes are folded by the next run. Each
//     fold is followed by a VACUUM of the pending table, so its deleted
//     rows never pile up, autovacuum or not.
//   - On PostgreSQL a batch reaches the server by binary COPY into a
//     temporary table of the session (pg_temp.cowrie_enrich_ip_batch,
//     emptied at every commit) and is then upserted with one INSERT …
//     SELECT, as a set-based statement would; the old rows that the ASN
//     counters need are read through the primary key first, except for
//     addresses the source found absent (pipeline.Record.NotInInventory):
//     those are inserted with ON CONFLICT DO NOTHING, and only the ones
//     stored since are read and upserted after all. The copy is
//     made in Prepare (pipeline.Preparer), in the batch's own transaction
//     before it takes the writer lock, while the batches before are written;
//     Write does it itself when Prepare did not. A batch of such addresses
//     only, none of them in another batch in flight and all their ASN rows
//     stored, is copied by Prepare straight into ip_inventory instead,
//     and its sessions filled there, leaving Write the ASN rows; should
//     an address be stored after all, the copy fails and the batch is
//     staged as usual.
//     Holding the writer lock, a batch waits at most 5 s for a row (another
//     process's copy ahead may wait for it), and a batch that gave up, or
//     was chosen as a deadlock's victim, is written again, like one whose
//     connection failed, once the later batches copied ahead are rolled
//     back (their Write does all their work then).
//   - Writers do not race: on PostgreSQL a transaction-level advisory lock
//     serialises inventory transactions across processes, and SQLite
//     transactions take the write lock when they begin.
//   - The generated columns (geo_country, is_scanner, is_bogon) are never
//     written. ip_types is set to the one type of the record's
//     ip_classification (TEXT[] on PostgreSQL, a JSON array on SQLite) only
//     when the record carries one; otherwise the stored value stays.
//   - session_summaries.source_ip is filled only after the address is in
//     ip_inventory, inside the same transaction, which keeps upstream's
//     foreign key from session_summaries to ip_inventory satisfied.
package inventory
