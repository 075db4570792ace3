// Package demodata generates synthetic Cowrie sessions for the demo and for
// tests: public IPv4 and IPv6 attackers with a long tail of repeat
// offenders, a few bogons and garbage addresses, IPv4-mapped spellings, and
// upstream-style rows whose address lives only in the enrichment JSON.
// Generation is deterministic for a given seed.
package demodata
