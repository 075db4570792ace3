// Package jsonl is a sink that writes one JSON object per record, to a file
// or to standard output: the output of dry runs, and a readable trace in
// tests.
//
// Each line shows what the inventory sink would write for the record: its
// canonical address, its session summary, its ASN and the enrichment keys
// that would be merged into ip_inventory (as inventory.Document builds it,
// so the two sinks cannot disagree), or, for a rejected record, the stage
// and reason it would be kept as a dead letter with. The sink never touches
// a database; a nil error from Write means the lines reached the writer.
//
// Lines are written by a hand-written encoder that produces exactly the
// bytes encoding/json writes for the line struct built with
// inventory.Document (a test compares the two on random records), at a
// fraction of the cost; a value it does not know goes through
// encoding/json, so errors stay encoding/json's.
package jsonl
