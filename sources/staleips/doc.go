// Package staleips is the stale_ips source: it streams the addresses of the
// Cowrie sessions whose inventory entry is missing or out of date, most
// recently active first, each with the session statistics the inventory
// sink stores (first seen, last seen, session count).
//
// Invariants:
//
//   - An address is a candidate when it has no ip_inventory row, a row with
//     NULL enrichment_updated_at, or one older than stale_after; the cut-off
//     is fixed when the source is built, so every Run selects the same set.
//   - Total costs no query of its own: Run counts the candidates it holds
//     on the server (PostgreSQL) or reads the count on its query's first
//     row (SQLite), and Total waits for it (or for Run's error, or for its
//     ctx).
//   - The session address expression is evaluated once per distinct
//     source_ip spelling and once per session without a usable source_ip,
//     never once per session (see candidatesSQL). On PostgreSQL, only the
//     odd spellings (store.OddSpelling: padded, upper case, IPv4-mapped,
//     blank) are grouped by address; the others are their own address, and
//     the query for them has the plan of a plain GROUP BY source_ip with a
//     merge join on ip_inventory.
//   - A session's address is store.SessionIP: source_ip, or on upstream
//     databases (where source_ip stays NULL until the IP is in the
//     inventory) the address in the session's enrichment JSON. New IPs are
//     therefore discovered on upstream databases too.
//   - Statistics are computed in SQL over all sessions of the address (all
//     spellings that SessionIP folds together), exact to the microsecond.
//   - Each record says whether ip_inventory lacked the address
//     (pipeline.Record.NotInInventory) and whether every session names it
//     in source_ip (pipeline.Record.SessionIPsFilled), so the stages and
//     the sink skip work that would find nothing.
//   - Addresses are not validated here: garbage is emitted as found so that
//     the validate stage can reject it with a reason.
//   - Memory is bounded: rows are read from the database cursor a page
//     (fetchSize rows) at a time and never collected in Go.
//   - On PostgreSQL the run holds no snapshot: the query is computed into a
//     cursor WITH HOLD when its transaction commits, so the rows the run
//     makes obsolete can be cleaned up while it goes on.
package staleips
