// Package cymru simulates Team Cymru's IP-to-ASN services on loopback for
// tests, benchmarks and offline demos: a bulk whois TCP server (begin,
// option words, one address per line, end) and a DNS server for the
// origin.asn.cymru.com, origin6.asn.cymru.com and asn.cymru.com zones, both
// answering from one Table of announced prefixes by longest match.
//
// The servers speak the wire formats of reference/protocols.md §1 and can
// misbehave on request (latency, connections dropped mid-answer, garbage,
// duplicated and reordered rows, respelled IPv6, SERVFAIL, silence,
// truncation). They record what clients did, including any breach of
// Cymru's etiquette (one address per connection, more than 1000 addresses
// per query), so tests can assert on it.
//
// Invariants: a server only ever listens on 127.0.0.1 with a port chosen by
// the kernel; every goroutine it starts ends before Close returns; Close is
// idempotent. Nothing here contacts the internet.
package cymru
