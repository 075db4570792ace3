// Package cymru provides the cymru stage: Team Cymru IP-to-ASN lookups for
// the addresses MaxMind gave no ASN, over bulk whois (default) or DNS, with
// clients of our own (reference/protocols.md §1 and §5).
//
// Invariants the stage keeps:
//
//   - Only eligible records (valid, not bogon, not rejected) without a
//     settled Cymru answer are considered; a record that already has an
//     ASN is skipped with ReasonASNKnown, so MaxMind's ASN wins.
//   - Cymru is used as its operators ask: in bulk mode each batch is one
//     TCP connection (begin, verbose, the addresses, end), never one per
//     address, with at most window.size (≤ 1000) addresses, and no more
//     than concurrency connections open at once (a semaphore in the client
//     backs the runtime's parallelism). With redis_url set, every
//     connection also holds one of shared_concurrency slots kept in Redis
//     for all processes (a sorted set of holders whose leases end after
//     timeout + 5s, so a killed worker's slot comes back on its own).
//   - An answer covers its BGP prefix: later addresses inside a prefix
//     answered in this run are filled without a query, from a bounded LRU
//     of prefix_cache prefixes (see prefixSet for the trade-off).
//   - Answers are matched by the parsed address, never by position or
//     spelling: reordered, duplicated (longest prefix kept) and respelled
//     IPv6 rows are handled. Garbage lines are counted and ignored.
//   - Outcomes per record: an answer → Set with a CymruResult and, when
//     r.ASN is nil, r.ASN; NA, NXDOMAIN or an address the complete answer
//     left out → Set(nil), a clean "not found"; an "Error:" line naming the
//     address, or a lookup still failing after retries (timeouts, resets,
//     truncated answers, SERVFAIL) → Fail, and the run goes on.
//   - Multi-origin prefixes ("13335 209242") are attributed to the first
//     ASN, the one Cymru lists first; the result type holds one ASN.
//   - AS names come with bulk answers; when missing, and always in DNS
//     mode, they are looked up at AS<n>.asn.cymru.com and cached per ASN
//     in a bounded LRU for the run.
//   - New does no I/O; the resolver of an empty dns_server is read from
//     /etc/resolv.conf on first use. Retries wait on timers and ctx, and
//     every exchange has a deadline.
package cymru
