package greynoise

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fake "github.com/cowrie-enrich/cowrie-enrich/internal/simulate/greynoise"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
)

// Addresses in the tests look routable but are never contacted: every
// request goes to the fake on 127.0.0.1.
var table = map[string]fake.Record{
	"45.83.64.1":  {Noise: true, Classification: "malicious", Name: "unknown", LastSeen: "2025-11-20"},
	"104.16.0.1":  {RIOT: true, Classification: "benign", Name: "Cloudflare", LastSeen: "2025-11-21"},
	"71.6.135.11": {Noise: true, RIOT: false, Classification: "benign", Name: "Shodan.io", LastSeen: "2025-11-22"},
}

func newFake(t *testing.T, opts fake.Options) *fake.Server {
	t.Helper()
	if opts.Records == nil {
		opts.Records = table
	}
	s := fake.New(opts)
	t.Cleanup(s.Close)
	return s
}

// testConfig is a fast configuration against srv.
func testConfig(srv *fake.Server) *Config {
	c := DefaultConfig()
	c.BaseURL = srv.URL
	c.Rate = 500
	c.Backoff = 10 * time.Millisecond
	c.Timeout = 2 * time.Second
	c.DailyQuota = 0
	return c
}

func newStage(t *testing.T, env pipeline.Env, cfg *Config) *Stage {
	t.Helper()
	st, err := New(env, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = st.(*Stage).Close() })
	return st.(*Stage)
}

func record(ip string, sessions int64) *pipeline.Record {
	r := pipeline.NewRecord(ip)
	r.Addr = netip.MustParseAddr(ip)
	r.Validation = &pipeline.Validation{}
	r.Sessions = sessions
	return r
}

func batch(ips ...string) pipeline.Batch {
	b := make(pipeline.Batch, len(ips))
	for i, ip := range ips {
		b[i] = record(ip, 1)
	}
	return b
}

// asked returns how many requests named ip.
func asked(srv *fake.Server, ip string) int {
	n := 0
	for _, r := range srv.Requests() {
		for _, x := range r.IPs {
			if x == ip {
				n++
			}
		}
	}
	return n
}

func result(t *testing.T, r *pipeline.Record) *pipeline.GreyNoiseResult {
	t.Helper()
	v, ok := r.Enrichment[source].(*pipeline.GreyNoiseResult)
	if !ok {
		t.Fatalf("%s: enrichment.greynoise = %#v (state %v %q)", r.IP(), r.Enrichment[source], r.Source(source).State, r.Source(source).Reason)
	}
	return v
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name        string
		mutate      func(*Config)
		errContains string
	}{
		{name: "defaults", mutate: func(*Config) {}},
		{name: "enterprise", mutate: func(c *Config) { c.API = APIEnterprise; c.APIKey = "k" }},
		{name: "bad api", mutate: func(c *Config) { c.API = "v2" }, errContains: `api "v2"`},
		{name: "bad base url", mutate: func(c *Config) { c.BaseURL = "api.greynoise.io" }, errContains: "base_url"},
		{name: "zero rate", mutate: func(c *Config) { c.Rate = 0 }, errContains: "rate 0"},
		{name: "zero burst", mutate: func(c *Config) { c.Burst = 0 }, errContains: "burst 0"},
		{name: "negative quota", mutate: func(c *Config) { c.DailyQuota = -1 }, errContains: "daily_quota"},
		{name: "warn above one", mutate: func(c *Config) { c.QuotaWarn = 1.5 }, errContains: "quota_warn"},
		{name: "bad redis url keeps password out", mutate: func(c *Config) { c.RedisURL = "http://user:hunter2@x" }, errContains: "redis_url"},
		{name: "zero timeout", mutate: func(c *Config) { c.Timeout = 0 }, errContains: "timeout"},
		{name: "negative retries", mutate: func(c *Config) { c.Retries = -1 }, errContains: "retries"},
		{name: "empty file reference", mutate: func(c *Config) { c.APIKey = "file:" }, errContains: "file: needs a path"},
		{name: "concurrency", mutate: func(c *Config) { c.Concurrency = 0 }, errContains: "concurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(c)
			err := c.Validate()
			switch {
			case tt.errContains == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.errContains != "" && (err == nil || !strings.Contains(err.Error(), tt.errContains)):
				t.Fatalf("Validate = %v; want an error containing %q", err, tt.errContains)
			case err != nil && strings.Contains(err.Error(), "hunter2"):
				t.Fatalf("error echoes a password: %v", err)
			}
		})
	}
}

// rewrite sends every request to the fake, whatever the URL says, so the
// shipped sample (base_url: https://api.greynoise.io) runs offline.
type rewrite struct{ to *url.URL }

func (rw rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host = rw.to.Scheme, rw.to.Host
	return http.DefaultTransport.RoundTrip(req)
}

func TestConformance(t *testing.T) {
	srv := newFake(t, fake.Options{})
	u, _ := url.Parse(srv.URL)
	env := pipelinetest.Env("greynoise")
	env.HTTP = &http.Client{Transport: rewrite{u}}
	pipelinetest.Conformance(t, Spec, env)
	for _, r := range srv.Requests() {
		if r.IPs[0] == "10.0.0.1" {
			t.Errorf("a bogon was sent: %+v", r)
		}
	}
}

func TestCommunityAnswers(t *testing.T) {
	srv := newFake(t, fake.Options{})
	srv.SetBehavior("45.83.64.2", fake.Malformed)
	srv.SetBehavior("45.83.64.3", fake.ServerError)
	srv.SetBehavior("45.83.64.4", fake.BadRequest)
	srv.SetBehaviorFor("45.83.64.5", fake.ServerError, 1) // recovers on retry
	env := pipelinetest.Env("greynoise")
	st := newStage(t, env, testConfig(srv))

	b := batch("45.83.64.1", "104.16.0.1", "203.0.113.77", "45.83.64.2", "45.83.64.3", "45.83.64.4", "45.83.64.5", "2a01:4f8::1")
	bogon := record("10.1.2.3", 1)
	bogon.Validation.IsBogon = true
	cached := record("71.6.135.11", 1)
	cached.SetCached(source, &pipeline.GreyNoiseResult{Classification: "benign"})
	b = append(b, bogon, cached)
	out, err := st.Process(t.Context(), b)
	if err != nil || len(out) != len(b) {
		t.Fatalf("Process = %d records, %v", len(out), err)
	}

	if got := result(t, b[0]); !got.Noise || got.RIOT || got.Classification != "malicious" || got.LastSeen != "2025-11-20T00:00:00+00:00" || got.CachedAt.IsZero() {
		t.Errorf("noise answer = %+v", got)
	}
	if got := result(t, b[1]); got.Noise || !got.RIOT || got.Name != "Cloudflare" || got.Classification != "benign" {
		t.Errorf("riot answer = %+v", got)
	}
	if got := result(t, b[2]); got.Noise || got.RIOT || got.Classification != "unknown" || got.LastSeen != "" || b[2].Source(source).State != pipeline.StateSucceeded {
		t.Errorf("404 answer = %+v, state %v; want unknown, succeeded", got, b[2].Source(source).State)
	}
	for i, want := range []string{"malformed answer", "unexpected HTTP 500 (3 attempts)", "not routable"} {
		r := b[3+i]
		if s := r.Source(source); s.State != pipeline.StateFailed || !strings.Contains(s.Reason, want) {
			t.Errorf("%s: %v %q; want failed with %q", r.IP(), s.State, s.Reason, want)
		}
	}
	if n := asked(srv, "45.83.64.3"); n != 3 {
		t.Errorf("5xx asked %d times; want 1 + 2 retries", n)
	}
	if n := asked(srv, "45.83.64.2"); n != 1 {
		t.Errorf("malformed answer asked %d times; want 1 (not retried)", n)
	}
	if got := result(t, b[6]); got.Classification != "unknown" {
		t.Errorf("recovered answer = %+v", got)
	}
	if s := b[7].Source(source); s.State != pipeline.StateSkipped || s.Reason != ReasonIPv6 {
		t.Errorf("IPv6: %v %q; want skipped %q", s.State, s.Reason, ReasonIPv6)
	}
	for _, ip := range []string{"2a01:4f8::1", "10.1.2.3", "71.6.135.11"} {
		if n := asked(srv, ip); n != 0 {
			t.Errorf("%s was sent %d times; want never", ip, n)
		}
	}
	if bogon.Sources != nil {
		t.Errorf("bogon marked: %v", bogon.Sources)
	}
	if v, _ := env.Progress.Value(counterNotFound); v != 2 {
		t.Errorf("greynoise_not_found = %d; want 2 (the 404 and the recovered unknown)", v)
	}
	if v, _ := env.Progress.Value(counterHits); v != 2 {
		t.Errorf("greynoise_hits = %d; want 2", v)
	}
}

func TestEnterpriseManyPerRequest(t *testing.T) {
	srv := newFake(t, fake.Options{Key: "paid-key"})
	cfg := testConfig(srv)
	cfg.API, cfg.APIKey = APIEnterprise, "paid-key"
	st := newStage(t, pipelinetest.Env("greynoise"), cfg)

	b := batch("45.83.64.1", "104.16.0.1", "203.0.113.77", "2a01:4f8::1")
	if _, err := st.Process(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || reqs[0].Method != http.MethodPost || reqs[0].Path != "/v3/ip" || len(reqs[0].IPs) != 4 {
		t.Fatalf("requests = %+v; want one POST /v3/ip with 4 addresses", reqs)
	}
	if got := result(t, b[0]); !got.Noise || got.Classification != "malicious" || got.LastSeen != "2025-11-20T00:00:00+00:00" {
		t.Errorf("noise = %+v", got)
	}
	if got := result(t, b[1]); !got.RIOT || got.Name != "Cloudflare" || got.Classification != "benign" {
		t.Errorf("riot = %+v", got)
	}
	for _, r := range b[2:] {
		if got := result(t, r); got.Noise || got.RIOT || got.Classification != "unknown" {
			t.Errorf("%s = %+v; want unknown", r.IP(), got)
		}
	}

	one := batch("71.6.135.11")
	if _, err := st.Process(t.Context(), one); err != nil {
		t.Fatal(err)
	}
	if last := srv.Requests()[1]; last.Method != http.MethodGet || last.Path != "/v3/ip/71.6.135.11" {
		t.Errorf("single lookup = %s %s; want GET /v3/ip/71.6.135.11", last.Method, last.Path)
	}
	if got := result(t, one[0]); got.Name != "Shodan.io" || !got.Noise {
		t.Errorf("single = %+v", got)
	}

	srv.SetBehavior("45.83.64.1", fake.Malformed)
	b = batch("45.83.64.1", "104.16.0.1")
	if _, err := st.Process(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	for _, r := range b {
		if s := r.Source(source); s.State != pipeline.StateFailed || !strings.Contains(s.Reason, "malformed") {
			t.Errorf("%s after a malformed multi answer: %v %q", r.IP(), s.State, s.Reason)
		}
	}
}

func TestKeyRejectedFailsTheRun(t *testing.T) {
	for _, api := range []string{APICommunity, APIEnterprise} {
		t.Run(api, func(t *testing.T) {
			srv := newFake(t, fake.Options{Key: "right-key"})
			cfg := testConfig(srv)
			cfg.API, cfg.APIKey = api, "wrong-key-0123"
			st := newStage(t, pipelinetest.Env("greynoise"), cfg)
			_, err := st.Process(t.Context(), batch("45.83.64.1", "104.16.0.1"))
			want := "greynoise: api key rejected (HTTP 401): check GREYNOISE_API_KEY"
			if err == nil || err.Error() != want || !errors.Is(err, ErrKeyRejected) {
				t.Fatalf("Process error = %v; want %q", err, want)
			}
			if n := len(srv.Requests()); n > cfg.Concurrency {
				t.Errorf("%d requests after a 401; want the stage to stop", n)
			}
		})
	}
}

func TestRetryAfterPausesEveryRequest(t *testing.T) {
	srv := newFake(t, fake.Options{RetryAfter: time.Second})
	srv.SetBehaviorFor("45.83.64.1", fake.RateLimited, 1)
	env := pipelinetest.Env("greynoise")
	cfg := testConfig(srv)
	cfg.Concurrency = 1
	st := newStage(t, env, cfg)
	b := batch("45.83.64.1", "104.16.0.1", "71.6.135.11")
	if _, err := st.Process(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 4 || reqs[0].Status != http.StatusTooManyRequests {
		t.Fatalf("requests = %+v; want the 429, then three answers", reqs)
	}
	for _, r := range reqs[1:] {
		if gap := r.At.Sub(reqs[0].At); gap < time.Second {
			t.Errorf("request %v sent %s after the 429; want at least Retry-After (1s)", r.IPs, gap)
		}
	}
	for _, r := range b {
		result(t, r)
	}
	if v, _ := env.Progress.Value(counterRateLimited); v != 1 {
		t.Errorf("greynoise_rate_limited = %d; want 1", v)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Duration
	}{
		{"absent", "", 0},
		{"seconds", "7", 7 * time.Second},
		{"http date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"past date", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"garbage", "soon", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %s; want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestServerQuotaSpentSkipsTheRest(t *testing.T) {
	srv := newFake(t, fake.Options{DailyQuota: 2})
	cfg := testConfig(srv)
	cfg.Concurrency = 1
	st := newStage(t, pipelinetest.Env("greynoise"), cfg)
	b := batch("45.83.64.1", "104.16.0.1", "71.6.135.11", "203.0.113.5", "203.0.113.6")
	out, err := st.Process(t.Context(), b)
	if err != nil || len(out) != len(b) {
		t.Fatalf("Process = %d, %v; want the batch and no error", len(out), err)
	}
	for _, r := range b[2:] {
		if s := r.Source(source); s.State != pipeline.StateSkipped || s.Reason != ReasonQuota {
			t.Errorf("%s: %v %q; want skipped %q", r.IP(), s.State, s.Reason, ReasonQuota)
		}
	}
	if n := len(srv.Requests()); n != 3 {
		t.Errorf("%d requests; want 2 answers and the one 429 that said the quota is spent", n)
	}
	// The next batch is skipped without asking.
	more := batch("203.0.113.7")
	if _, err := st.Process(t.Context(), more); err != nil || more[0].Source(source).Reason != ReasonQuota {
		t.Fatalf("next batch: %v %+v", err, more[0].Source(source))
	}
	if n := len(srv.Requests()); n != 3 {
		t.Errorf("%d requests after the quota was spent; want none more", n)
	}
}

func TestShortQuotaAsksMostSessionsFirst(t *testing.T) {
	srv := newFake(t, fake.Options{})
	var logs bytes.Buffer
	env := pipelinetest.Env("greynoise")
	env.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := testConfig(srv)
	cfg.DailyQuota = 3
	st := newStage(t, env, cfg)
	var b pipeline.Batch
	for i := range 6 {
		b = append(b, record(fmt.Sprintf("45.83.65.%d", i+1), int64(i+1)))
	}
	if _, err := st.Process(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	for _, r := range b {
		s := r.Source(source)
		if top := r.Sessions > 3; top != (s.State == pipeline.StateSucceeded) || (!top && s.Reason != ReasonQuota) {
			t.Errorf("%s (%d sessions): %v %q; want the three most active asked, the rest skipped", r.IP(), r.Sessions, s.State, s.Reason)
		}
	}
	if srv.Violations() != (fake.Violations{}) || len(srv.Requests()) != 3 {
		t.Errorf("fake saw %d requests, violations %+v", len(srv.Requests()), srv.Violations())
	}
	if v, ok := env.Progress.Value(gaugeQuota); !ok || v != 0 {
		t.Errorf("greynoise_quota_remaining = %d, %v; want 0", v, ok)
	}
	if n := strings.Count(logs.String(), "nearly spent"); n != 1 {
		t.Errorf("quota warning logged %d times; want once:\n%s", n, logs.String())
	}
}

func TestRateNeverExceeded(t *testing.T) {
	const rps = 20
	// Requests spaced on our side can arrive bunched when the machine is
	// busy, so the fake's bucket holds a few tokens; the sliding-window
	// count below is the strict check.
	srv := newFake(t, fake.Options{Rate: rps, Burst: rps / 4})
	cfg := testConfig(srv)
	cfg.Rate = rps
	st := newStage(t, pipelinetest.Env("greynoise"), cfg)
	var b pipeline.Batch
	for i := range 60 {
		b = append(b, record(fmt.Sprintf("45.83.%d.%d", 66+i/200, i%200+1), 1))
	}
	if _, err := st.Process(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Requests()); n != len(b) {
		t.Fatalf("%d requests; want %d", n, len(b))
	}
	if m := srv.MaxInWindow(time.Second); m > rps {
		t.Errorf("%d requests arrived within one second; want at most %d", m, rps)
	}
	if v := srv.Violations(); v.Rate != 0 {
		t.Errorf("fake refused %d requests for rate", v.Rate)
	}
}

func TestAPIKeyNeverLeaks(t *testing.T) {
	const key = "gn-SECRET-4f1d2c"
	srv := newFake(t, fake.Options{Key: key})
	srv.SetBehavior("45.83.64.2", fake.ServerError)
	srv.SetBehavior("45.83.64.3", fake.Malformed)
	srv.SetBehaviorFor("45.83.64.4", fake.RateLimitedNoRetryAfter, 1)
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	env := pipelinetest.Env("greynoise")
	env.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := testConfig(srv)
	cfg.APIKey = secret(filePrefix + keyFile)
	cfg.DailyQuota = 4
	st := newStage(t, env, cfg)
	b := batch("45.83.64.1", "45.83.64.2", "45.83.64.3", "45.83.64.4", "45.83.64.5")
	if _, err := st.Process(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if got := srv.Requests()[0].Key; got != key {
		t.Fatalf("key header %q; want the file's key without its newline", got)
	}

	var seen strings.Builder
	for _, r := range b {
		doc, _ := json.Marshal(map[string]any{"enrichment": r.Enrichment, "meta": r.Meta("run", "p", 0)})
		seen.Write(doc)
	}
	loaded := *cfg
	loaded.APIKey = secret(key)
	cfgJSON, _ := json.Marshal(&loaded)
	fmt.Fprintf(&seen, "%v %+v %#v %s %s", loaded, loaded, loaded, cfgJSON, logs.String())
	env.Logger.Debug("config", "cfg", loaded, "key", loaded.APIKey)
	seen.WriteString(logs.String())

	bad := testConfig(srv)
	bad.APIKey = secret(key + "-revoked")
	_, err := newStage(t, env, bad).Process(t.Context(), batch("45.83.64.1"))
	if err == nil {
		t.Fatal("a wrong key was accepted")
	}
	seen.WriteString(err.Error())
	if strings.Contains(seen.String(), key) {
		t.Errorf("the key leaked into logs, errors or JSON:\n%s", seen.String())
	}
	if !strings.Contains(logs.String(), "greynoise batch") {
		t.Errorf("no debug line was logged, so the check saw nothing: %s", logs.String())
	}
}

func TestFileKeyMissing(t *testing.T) {
	cfg := DefaultConfig()
	cfg.APIKey = secret(filePrefix + filepath.Join(t.TempDir(), "absent"))
	if _, err := New(pipelinetest.Env("greynoise"), cfg); err == nil || !strings.Contains(err.Error(), "read api_key file") {
		t.Fatalf("New = %v; want a read error", err)
	}
	cfg = DefaultConfig()
	cfg.API = APIEnterprise
	if _, err := New(pipelinetest.Env("greynoise"), cfg); err == nil || !strings.Contains(err.Error(), "needs a key") {
		t.Fatalf("New = %v; want the enterprise api to need a key", err)
	}
}

func TestCancelledContextReturnsPromptly(t *testing.T) {
	srv := newFake(t, fake.Options{SlowDelay: time.Minute})
	srv.SetDefault(fake.Slow)
	st := newStage(t, pipelinetest.Env("greynoise"), testConfig(srv))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := st.Process(ctx, batch("45.83.64.1", "104.16.0.1"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Process = %v; want the context's error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Process took %s after the context ended", d)
	}
}

func TestTimeoutRetriedThenFailed(t *testing.T) {
	srv := newFake(t, fake.Options{SlowDelay: 5 * time.Second})
	srv.SetBehavior("45.83.64.1", fake.Slow)
	cfg := testConfig(srv)
	cfg.Timeout, cfg.Retries = 100*time.Millisecond, 1
	st := newStage(t, pipelinetest.Env("greynoise"), cfg)
	b := batch("45.83.64.1", "104.16.0.1")
	if _, err := st.Process(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if s := b[0].Source(source); s.State != pipeline.StateFailed || s.Reason != "no answer within 100ms (2 attempts)" {
		t.Errorf("slow address: %v %q", s.State, s.Reason)
	}
	if n := asked(srv, "45.83.64.1"); n != 2 {
		t.Errorf("asked %d times; want 1 + 1 retry", n)
	}
	result(t, b[1])
}
