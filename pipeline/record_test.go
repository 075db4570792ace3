package pipeline_test

import (
	"errors"
	"testing"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

func TestEnriched(t *testing.T) {
	tests := []struct {
		name string
		mark func(r *pipeline.Record)
		want bool
	}{
		{"nothing asked", func(r *pipeline.Record) {}, false},
		{"all skipped", func(r *pipeline.Record) { r.Skip("maxmind", "no database"); r.Skip("greynoise", "no key") }, false},
		{"one answered", func(r *pipeline.Record) { r.Set("maxmind", nil); r.Skip("greynoise", "ipv6") }, true},
		{"answered from cache", func(r *pipeline.Record) { r.SetCached("cymru", nil) }, true},
		{"answered but another failed", func(r *pipeline.Record) { r.Set("maxmind", nil); r.Fail("greynoise", errors.New("timeout")) }, false},
		{"bogon", func(r *pipeline.Record) { r.Validation = &pipeline.Validation{IsBogon: true, Reason: "private"} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := pipeline.NewRecord("81.2.69.1")
			tt.mark(r)
			if got := r.Enriched(); got != tt.want {
				t.Errorf("Enriched() = %v, want %v", got, tt.want)
			}
		})
	}
}
