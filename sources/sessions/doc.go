// Package sessions is the sessions source, the driver of the historical
// snapshot backfill (config backfill-sessions). Its Run has two phases:
//
//  1. It streams the distinct addresses of the window's sessions that lack
//     a snapshot and are not enriched in ip_inventory yet, each with the
//     statistics of all its sessions, so the normal stages enrich them and
//     the inventory sink stores them.
//  2. Once every emitted record is committed (or dropped as a duplicate),
//     it sweeps the window with snapshots.Backfill: chunks of sessions
//     keyset-paginated on session_id, one UPDATE … FROM per chunk, with a
//     checkpoint committed atomically with each chunk.
//
// Invariants:
//
//   - The window is closed when the source is built: since <= first_event_at
//     < until (either bound open when unset).
//   - A session's address is store.SessionIP: source_ip, or on upstream
//     databases the canonical first-seen address in its enrichment JSON.
//   - The sweep starts only after phase 1 is durable, so every session whose
//     address the run enriched gets its snapshot in the sweep.
//   - Memory is bounded: phase 1 streams rows from a cursor and the sweep
//     holds one chunk's counters, never session rows.
package sessions
