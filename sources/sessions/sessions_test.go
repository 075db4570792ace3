package sessions_test

import (
	"strings"
	"testing"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/snapshots"
	"github.com/cowrie-enrich/cowrie-enrich/sources/sessions"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name        string
		cfg         sessions.Config
		errContains string
	}{
		{name: "defaults", cfg: *sessions.DefaultConfig()},
		{name: "dates", cfg: sessions.Config{Since: "2024-01-01", Until: "2025-01-01T00:00:00Z", ChunkSize: 1}},
		{name: "bad since", cfg: sessions.Config{Since: "yesterday", ChunkSize: 1}, errContains: "since: unreadable time"},
		{name: "empty window", cfg: sessions.Config{Since: "2025-01-01", Until: "2025-01-01", ChunkSize: 1}, errContains: "empty session window"},
		{name: "zero chunk", cfg: sessions.Config{}, errContains: "chunk_size must be between"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.errContains == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errContains) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.errContains)
			}
		})
	}
}

func TestSampleDecodes(t *testing.T) {
	for _, spec := range []pipeline.Spec{sessions.Spec, snapshots.Spec} {
		cfg, err := pipeline.DecodeSample(spec)
		if err != nil {
			t.Fatalf("%s: decode sample: %v", spec.Name, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: sample does not validate: %v", spec.Name, err)
		}
	}
}
