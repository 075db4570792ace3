package inventory

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// badJSON is a stage value whose MarshalJSON writes something that is not
// JSON.
type badJSON struct{}

func (badJSON) MarshalJSON() ([]byte, error) { return []byte(`{"unclosed":`), nil }

// failingJSON is a stage value whose MarshalJSON fails.
type failingJSON struct{}

func (failingJSON) MarshalJSON() ([]byte, error) { return nil, errors.New("no can do") }

func TestRowEncode(t *testing.T) {
	asn := int64(64500)
	tests := []struct {
		name        string
		doc         map[string]any
		errContains string
	}{
		{"a real enrichment", nil, ""},
		{"marshalers, plain values and HTML characters", map[string]any{
			"maxmind":  &pipeline.MaxMindResult{Country: "US", City: "<A&B>", ASN: &asn},
			"cymru":    pipeline.CymruResult{Registry: "arin"},
			"dshield":  map[string]any{"ip": map[string]any{"count": 3, "note": "a<b"}},
			"_meta":    pipeline.Meta{RunID: "run-1"},
			"nothing":  nil,
			"listed":   []string{"b", "a"},
			"numbered": 1.5,
		}, ""},
		{"nil pointer marshaler", map[string]any{"maxmind": (*pipeline.MaxMindResult)(nil)}, ""},
		{"value that does not marshal", map[string]any{"broken": func() {}}, "unsupported type"},
		{"marshaler that fails", map[string]any{"broken": failingJSON{}}, "no can do"},
		{"marshaler that writes something else", map[string]any{"broken": badJSON{}}, "broken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, w := tt.doc, &row{doc: tt.doc}
			if doc == nil {
				// A row of one record is written without building its map.
				s := &Sink{runID: "run-1", name: "refresh-ips", now: func() time.Time { return t0 }}
				w = s.plan(pipeline.Batch{benchRecord("198.51.100.7", 7)}).rows[0]
				doc = Document(w.records[0], w.meta)
			}
			err := w.encode()
			if tt.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errContains) {
					t.Fatalf("encode = %v, want an error containing %q", err, tt.errContains)
				}
				return
			}
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			want, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			if string(w.docJSON) != string(want) {
				t.Errorf("encode wrote\n%s\nwant what json.Marshal writes\n%s", w.docJSON, want)
			}
		})
	}
}
