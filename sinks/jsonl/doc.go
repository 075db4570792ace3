// Package jsonl is a sink that writes one JSON object per record, to a file
// or to standard output: the output of dry runs, and a readable trace in
// tests.
//
// Each line shows what the inventory sink would write for the record: its
// canonical address, its session summary, its ASN and the enrichment keys
// that would be merged into ip_inventory (built by inventory.Document, so
// the two sinks cannot disagree), or, for a rejected record, the stage and
// reason it would be kept as a dead letter with. The sink never touches a
// database; a nil error from Write means the lines reached the writer.
package jsonl
