// Package bench builds what the bench command measures: a synthetic
// honeypot database of a chosen size (sessions over addresses, a share of
// them known only from their session JSON, as upstream's loader leaves
// them), the simulated internet that describes those addresses (one /24
// per 256 addresses, every tenth without a MaxMind ASN so Team Cymru is
// asked), the database's own limit to compare against (one set-based
// INSERT … ON CONFLICT of the rows a run wrote), and the counters and
// report of a measured run.
//
// A bench database is marked: Prepare refuses a database whose sessions
// it did not generate, so the bench can never overwrite real data.
package bench
