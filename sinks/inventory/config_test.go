package inventory

import (
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name        string
		mod         func(*Config)
		errContains string
	}{
		{name: "defaults", mod: func(*Config) {}},
		{name: "smallest batch", mod: func(c *Config) { c.BatchSize = 1 }},
		{name: "largest batch", mod: func(c *Config) { c.BatchSize = maxBatchSize }},
		{name: "zero batch", mod: func(c *Config) { c.BatchSize = 0 }, errContains: "batch_size must be between 1 and 100000, got 0"},
		{name: "batch too large", mod: func(c *Config) { c.BatchSize = maxBatchSize + 1 }, errContains: "batch_size"},
		{name: "zero flush interval", mod: func(c *Config) { c.FlushInterval = 0 }, errContains: "flush_interval must be positive"},
		{name: "negative flush interval", mod: func(c *Config) { c.FlushInterval = -time.Second }, errContains: "flush_interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(c)
			err := c.Validate()
			switch {
			case tt.errContains == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tt.errContains != "" && (err == nil || !strings.Contains(err.Error(), tt.errContains)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.errContains)
			}
		})
	}
}

func TestSampleDecodes(t *testing.T) {
	cfg, err := pipeline.DecodeSample(Spec)
	if err != nil {
		t.Fatalf("decode sample: %v", err)
	}
	if got, want := cfg.(*Config), DefaultConfig(); *got != *want {
		t.Errorf("sample decodes to %+v, want the defaults %+v", *got, *want)
	}
}

func TestSpec(t *testing.T) {
	if Spec.Kind != pipeline.KindSink || Spec.Name != "inventory" || Spec.Summary == "" {
		t.Fatalf("Spec = %+v", Spec)
	}
	if err := Spec.Defaults().Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if _, err := Spec.New(pipeline.Env{}, Spec.Defaults()); err == nil || !strings.Contains(err.Error(), "inventory sink needs a database") {
		t.Fatalf("New without a store = %v, want the database error", err)
	}
	s := &Sink{cfg: Config{BatchSize: 2000, FlushInterval: 3 * time.Second}}
	if w := s.Window(); w != (pipeline.Window{Size: 2000, MaxWait: 3 * time.Second}) {
		t.Fatalf("Window = %+v", w)
	}
}
