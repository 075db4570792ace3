// Package jsonr reads the flat JSON objects the provider answers are
// stored as, decoding each value exactly as encoding/json does, without
// reflection and without encoding/json's separate validation pass. A
// cached run decodes every answer it serves, and the reflective decoder
// was the largest cost of a lookup after the network.
//
// It handles only what the answers hold: one object whose keys are plain
// strings and whose values are strings, numbers, true, false or null.
// Anything else (a nested value, an escaped key, a syntax error) makes
// Walk report false, and the caller decodes with encoding/json, which
// handles it or reports the error. Fuzz tests hold Walk to json.Valid and
// the value readers to encoding/json's results.
package jsonr
