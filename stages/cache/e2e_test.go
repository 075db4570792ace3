package cache_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cowrie-enrich/cowrie-enrich/cmd/cli"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// provider is a stand-in for the provider stages: it answers every source
// the cache did not settle and counts each answer as one request.
type provider struct{ requests *atomic.Int64 }

func (p provider) Process(_ context.Context, b pipeline.Batch) (pipeline.Batch, error) {
	for _, r := range b {
		if !r.Eligible() {
			continue
		}
		now := pipeline.At(time.Now())
		asn := int64(64500)
		for _, src := range []string{pipeline.SourceMaxMind, pipeline.SourceCymru, pipeline.SourceGreyNoise} {
			if r.Settled(src) {
				continue
			}
			p.requests.Add(1)
			switch src {
			case pipeline.SourceMaxMind:
				m := &pipeline.MaxMindResult{Country: "NL", ASN: &asn, ASNOrg: "EXAMPLE", CachedAt: now}
				r.Set(src, m)
				r.ASN = m.ASNInfo()
			case pipeline.SourceCymru:
				r.Set(src, &pipeline.CymruResult{ASN: &asn, Country: "NL", Registry: "ripencc", CachedAt: now})
			default:
				r.Set(src, nil) // not found: cached as a negative answer
			}
		}
	}
	return b, nil
}

// TestSecondRunAsksNoProviderIntegration runs the command line twice on
// PostgreSQL with Redis: the second run answers everything from the cache.
// A third run with an empty Redis answers everything from the database.
func TestSecondRunAsksNoProviderIntegration(t *testing.T) {
	redisURL := os.Getenv(testdb.EnvRedis)
	if redisURL == "" {
		t.Fatalf("%s is not set: run ./scripts/test", testdb.EnvRedis)
	}
	dbURL := testdb.PostgresURL(t)
	dir := t.TempDir()
	var ips []string
	for i := range 300 {
		ips = append(ips, fmt.Sprintf("45.10.%d.%d", i/250, i%250+1))
	}
	ipFile := filepath.Join(dir, "ips.txt")
	if err := os.WriteFile(ipFile, []byte(strings.Join(ips, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	reg := cli.DefaultRegistry()
	if err := reg.Add(pipeline.StageSpec("stub_provider", "answers every source and counts requests", "", func() *pipeline.NoConfig { return &pipeline.NoConfig{} },
		func(pipeline.Env, *pipeline.NoConfig) (pipeline.Stage, error) { return provider{&requests}, nil })); err != nil {
		t.Fatal(err)
	}
	prefixes := []string{randomPrefix(), randomPrefix()}
	t.Cleanup(func() { cleanRedis(redisURL, prefixes) })
	config := func(prefix string) string {
		p := filepath.Join(dir, prefix[len(prefix)-6:]+".yaml")
		body := fmt.Sprintf(`version: 1
name: cache-e2e
source:
  type: ip_list
  with: {path: %q}
stages:
  - type: validate
  - type: dedupe
  - type: cache
    with: {redis_url: %q, key_prefix: %q}
  - type: stub_provider
sink:
  type: inventory
  with: {batch_size: 100, flush_interval: 100ms}
`, ipFile, redisURL, prefix)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	run := func(name, prefix string) {
		t.Helper()
		requests.Store(0)
		var out, errb bytes.Buffer
		if code := cli.Main(context.Background(), reg, []string{"run", config(prefix), "--db", dbURL, "--status-dir", dir}, &out, &errb); code != cli.ExitOK {
			t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", name, code, out.String(), errb.String())
		}
	}
	run("first run", prefixes[0])
	if n := requests.Load(); n != int64(3*len(ips)) {
		t.Fatalf("first run: %d provider requests; want %d", n, 3*len(ips))
	}
	run("second run", prefixes[0])
	if n := requests.Load(); n != 0 {
		t.Errorf("second run (Redis): %d provider requests; want 0", n)
	}
	run("third run, empty Redis", prefixes[1])
	if n := requests.Load(); n != 0 {
		t.Errorf("third run (database): %d provider requests; want 0", n)
	}
}

func randomPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "cowrie-enrich-test:" + hex.EncodeToString(b[:])
}

func cleanRedis(url string, prefixes []string) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return
	}
	c := redis.NewClient(o)
	defer c.Close()
	ctx := context.Background()
	for _, p := range prefixes {
		keys, _ := c.Keys(ctx, p+":*").Result()
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	}
}
