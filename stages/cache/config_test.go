package cache

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name        string
		edit        func(c *Config)
		err         error
		errContains string
	}{
		{name: "defaults", edit: func(*Config) {}},
		{name: "every tier", edit: func(c *Config) { c.RedisURL = "redis://:secret@127.0.0.1:6379/2"; c.FileDir = "/tmp/x" }},
		{name: "zero cymru ttl", edit: func(c *Config) { c.TTL.Cymru = 0 }, err: ErrTTL, errContains: "ttl.cymru 0s"},
		{name: "negative negative_ttl", edit: func(c *Config) { c.NegativeTTL = -time.Hour }, err: ErrTTL, errContains: "negative_ttl -1h0m0s"},
		{name: "zero timeout", edit: func(c *Config) { c.Timeout = 0 }, err: ErrTimeout, errContains: "timeout 0s"},
		{name: "zero concurrency", edit: func(c *Config) { c.Concurrency = 0 }, err: ErrConcurrency, errContains: "concurrency 0"},
		{name: "zero window", edit: func(c *Config) { c.Window.Size = 0 }, err: ErrWindow, errContains: "size: 0"},
		{name: "window too large", edit: func(c *Config) { c.Window.Size = MaxWindowSize + 1 }, err: ErrWindow, errContains: "size: 10001"},
		{name: "window without max_wait", edit: func(c *Config) { c.Window.MaxWait = 0 }, err: ErrWindow, errContains: "max_wait: 0s"},
		{name: "empty prefix", edit: func(c *Config) { c.KeyPrefix = "" }, err: ErrKeyPrefix, errContains: "key_prefix"},
		{name: "prefix with space", edit: func(c *Config) { c.KeyPrefix = "a b" }, err: ErrKeyPrefix, errContains: `"a b"`},
		{name: "bad redis url keeps the password out", edit: func(c *Config) { c.RedisURL = "http://user:hunter2@host" }, err: ErrRedisURL, errContains: "redis://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(c)
			err := c.Validate()
			if tt.err == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.errContains) {
				t.Fatalf("Validate = %v; want %v containing %q", err, tt.err, tt.errContains)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

func TestNewMakesNoConnection(t *testing.T) {
	c := DefaultConfig()
	c.RedisURL = "redis://127.0.0.1:1/0" // nothing listens there
	st := newStage(t, env(nil), c)
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestWindowFromConfig(t *testing.T) {
	c := DefaultConfig()
	c.Window = pipeline.Window{Size: 777, MaxWait: time.Second}
	if got := newStage(t, env(nil), c).Window(); got != c.Window {
		t.Errorf("Window() = %+v, want the configured %+v", got, c.Window)
	}
	if d := DefaultConfig().Window; d.Size != 1000 {
		t.Errorf("default window size %d, want 1000", d.Size)
	}
}

func TestConformance(t *testing.T) {
	pipelinetest.Conformance(t, Spec, pipelinetest.Env("cache"))
}

func TestConformanceAllTiersIntegration(t *testing.T) {
	// The shipped sample turns no tier on; check the contract with all
	// three (and no cancelled-context hang on a live Redis).
	url := redisURL(t)
	sample := fmt.Sprintf("redis_url: %q\nfile_dir: %q\nkey_prefix: %q\n", url, t.TempDir(), keyPrefix(t, url))
	spec := pipeline.StageSpec(Spec.Name, Spec.Summary, sample, DefaultConfig, New)
	e := pipelinetest.Env("cache")
	e.Store = testdb.Migrated(t, testdb.PostgresURL(t))
	pipelinetest.Conformance(t, spec, e)
}
