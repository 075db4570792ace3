package inventory

import (
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
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
		doc["validation"] = r.Validation
	}
	doc["_meta"] = meta
	return doc
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
