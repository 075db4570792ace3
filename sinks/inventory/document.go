package inventory

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/jsonw"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// The keys Document sets over the providers' answers.
const (
	keyValidation = "validation"
	keyMeta       = "_meta"
)

// Document returns the top-level enrichment keys a run writes for r: each
// refreshed source, "validation" when the validate stage ran, and "_meta".
// The inventory sink merges them into the stored JSON; the jsonl sink prints
// them, so a dry run shows exactly what a real run would merge.
func Document(r *pipeline.Record, meta pipeline.Meta) map[string]any {
	doc := make(map[string]any, len(r.Enrichment)+2)
	for k, v := range r.Enrichment {
		doc[k] = v
	}
	if r.Validation != nil {
		doc[keyValidation] = r.Validation
	}
	doc[keyMeta] = meta
	return doc
}

// AppendDocument appends Document(r, *meta) as encoding/json writes it,
// keys sorted, without building the map. A value that does not encode
// fails the document with encoding/json's error.
func AppendDocument(b []byte, r *pipeline.Record, meta *pipeline.Meta) ([]byte, error) {
	var stack [8]string
	keys := append(stack[:0], keyMeta)
	for k := range r.Enrichment {
		if k != keyMeta && (k != keyValidation || r.Validation == nil) {
			keys = append(keys, k)
		}
	}
	if r.Validation != nil {
		keys = append(keys, keyValidation)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(jsonw.AppendString(b, k), ':')
		var err error
		switch {
		case k == keyMeta:
			b, err = meta.AppendJSON(b)
		case k == keyValidation && r.Validation != nil:
			b, err = r.Validation.AppendJSON(b)
		default:
			b, err = pipeline.AppendValue(b, r.Enrichment[k])
		}
		if err != nil {
			return b, fmt.Errorf("encode enrichment: %q: %w", k, err)
		}
	}
	return append(b, '}'), nil
}

// appendMap appends a document built as a map, as AppendDocument writes
// one built from a record.
func appendMap(b []byte, doc map[string]any) ([]byte, error) {
	b = append(b, '{')
	for i, k := range slices.Sorted(maps.Keys(doc)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(jsonw.AppendString(b, k), ':')
		var err error
		if b, err = pipeline.AppendValue(b, doc[k]); err != nil {
			return b, fmt.Errorf("encode enrichment: %q: %w", k, err)
		}
	}
	return append(b, '}'), nil
}

// Meta returns the provenance of r for a run, with the time since the
// runtime received the record as its duration. A record built outside the
// runtime (no Received time) reports a duration of zero rather than the age
// of the zero time.
func Meta(r *pipeline.Record, runID, pipelineName string, now time.Time) pipeline.Meta {
	var d time.Duration
	if !r.Received.IsZero() {
		d = max(now.Sub(r.Received), 0)
	}
	return r.Meta(runID, pipelineName, d)
}
