// Package iplist is the ip_list source: it reads addresses, one per line,
// from a file or standard input and emits one record per address, for
// enriching a hand-picked list (an incident's IPs, a block list).
//
// Invariants:
//
//   - Blank lines and lines starting with # are skipped; a # comment after
//     whitespace ends the address. Anything else is emitted as found, even
//     garbage, so the validate stage rejects it with a reason.
//   - Records carry no session data (zero FirstSeen, LastSeen, Sessions).
//   - Memory is bounded by the maximum line length, not by the input: an
//     over-long line is emitted as a truncated, marked Raw value that
//     validation rejects, and the run goes on.
package iplist
