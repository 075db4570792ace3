// Package dedupe provides the dedupe stage: it drops a record whose
// canonical address was already seen in this run, so providers are asked
// once per address however often a source lists it.
//
// Invariants the stage keeps:
//
//   - Memory is bounded by Capacity: two generations of at most Capacity/2
//     addresses each, kept as numbers in pointer-free sets (5 to 11 bytes
//     per IPv4 address, 21 to 43 per IPv6). When the current generation is full it becomes the
//     old one and the previous old one is forgotten, so an address seen
//     long ago may pass again; that costs a repeated lookup, never a loss.
//   - Rejected records pass untouched and are not remembered: they must
//     reach the sink's dead letters.
//   - Order within a batch is kept; the first record of an address wins.
package dedupe
