// Package jsonw appends JSON values exactly as encoding/json writes them
// (its HTML-safe string escaping, its ES6 number formatting), without
// reflection. A run writes the enrichment document of every address
// several times (the inventory row, the cache tiers, JSON lines), and the
// reflective encoder, with its second pass over every MarshalJSON's
// output, cost more than looking the addresses up. Tests and fuzzers hold
// each function to encoding/json's bytes.
package jsonw
