package status

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }
func testEnv(dir string, c *clock) pipeline.Env {
	p := pipeline.NewProgress(c.now())
	return pipeline.Env{ID: "status", Pipeline: "refresh-ips", RunID: "run-1", Now: c.now, Progress: p, StatusDir: dir}
}

func newSink(t *testing.T, env pipeline.Env, cfg *Config) *Sink {
	t.Helper()
	s, err := New(env, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.(*Sink).Close() })
	return s.(*Sink)
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func keys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// committed builds a batch like the inventory sink commits it.
func committed() pipeline.Batch {
	a := pipeline.NewRecord("1.1.1.1")
	a.Addr = netip.MustParseAddr("1.1.1.1")
	a.Set(pipeline.SourceMaxMind, map[string]any{"country": "AU"})
	a.SetCached(pipeline.SourceCymru, map[string]any{"asn": 13335})
	a.Skip(pipeline.SourceGreyNoise, "no api key")

	b := pipeline.NewRecord("8.8.8.8")
	b.Addr = netip.MustParseAddr("8.8.8.8")
	b.Set(pipeline.SourceMaxMind, nil) // clean "not found": no hit
	b.Set(pipeline.SourceGreyNoise, map[string]any{"noise": false})

	bad := pipeline.NewRecord("999.1.1.1'; DROP TABLE x;--")
	bad.Reject("validate", errors.New("malformed address: not an ip address"))
	return pipeline.Batch{a, b, bad}
}

func TestSnapshotShape(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	env := testEnv(dir, c)
	env.Progress.SetTotal(10)
	s := newSink(t, env, DefaultConfig())
	c.advance(2 * time.Second)
	if err := s.Write(t.Context(), committed()); err != nil {
		t.Fatal(err)
	}

	snap := readJSON(t, filepath.Join(dir, "refresh-ips.json"))
	if got, want := keys(snap), []string{"checkpoint", "dead_letter", "ingest_id", "last_updated", "metrics", "phase"}; !slices.Equal(got, want) {
		t.Fatalf("snapshot keys %v; want %v", got, want)
	}
	metrics := snap["metrics"].(map[string]any)
	wantMetrics := []string{"cache_hits", "cymru_hits", "elapsed_seconds", "greynoise_hits", "greynoise_not_found",
		"greynoise_quota_remaining", "greynoise_rate_limited", "ip_errors", "ips_per_second", "ips_processed", "ips_total", "maxmind_hits", "sources_skipped", "state"}
	if got := keys(metrics); !slices.Equal(got, wantMetrics) {
		t.Fatalf("metrics keys %v; want %v", got, wantMetrics)
	}
	want := map[string]any{
		"ips_total": 10.0, "ips_processed": 3.0, "ip_errors": 1.0, "ips_per_second": 1.5, "elapsed_seconds": 2.0,
		"cache_hits": 1.0, "maxmind_hits": 1.0, "cymru_hits": 1.0, "greynoise_hits": 1.0,
		"greynoise_quota_remaining": -1.0, "greynoise_not_found": 0.0, "greynoise_rate_limited": 0.0, "state": "running",
	}
	for k, v := range want {
		if metrics[k] != v {
			t.Errorf("metrics.%s = %v; want %v", k, metrics[k], v)
		}
	}
	if sk := metrics["sources_skipped"].(map[string]any); len(sk) != 1 || sk["greynoise"] != 1.0 {
		t.Errorf("sources_skipped = %v", sk)
	}
	if snap["phase"] != "refresh-ips" || snap["ingest_id"] != "run-1" || snap["last_updated"] != "2025-03-01T12:00:02Z" {
		t.Errorf("header = %v %v %v", snap["phase"], snap["ingest_id"], snap["last_updated"])
	}
	if dl := snap["dead_letter"].(map[string]any); len(dl) != 1 || dl["total"] != 1.0 {
		t.Errorf("dead_letter = %v", dl)
	}
	if cp := snap["checkpoint"].(map[string]any); cp["last_ip"] != "8.8.8.8" || cp["committed"] != 3.0 {
		t.Errorf("checkpoint = %v", cp)
	}

	raw, _ := os.ReadFile(filepath.Join(dir, "refresh-ips.json"))
	if strings.ContainsAny(string(raw), " \n") || strings.Contains(string(raw), "DROP") {
		t.Errorf("snapshot not compact or echoes raw input: %s", raw)
	}

	agg := readJSON(t, filepath.Join(dir, "status.json"))
	if got := keys(agg); !slices.Equal(got, []string{"last_updated", "phases"}) {
		t.Fatalf("aggregate keys %v", got)
	}
	phase := agg["phases"].(map[string]any)["refresh-ips"].(map[string]any)
	if got, want := keys(phase), []string{"checkpoint", "dead_letter", "ingest_id", "last_updated", "metrics", "phase", "status_file"}; !slices.Equal(got, want) {
		t.Fatalf("aggregate phase keys %v; want %v", got, want)
	}
	if phase["status_file"] != "refresh-ips.json" {
		t.Errorf("status_file = %v", phase["status_file"])
	}
}

func TestGreyNoiseCountersFromProgress(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	env := testEnv(dir, c)
	env.Progress.Set("greynoise_quota_remaining", 42)
	env.Progress.Add("greynoise_not_found", 3)
	env.Progress.Add("greynoise_rate_limited", 2)
	s := newSink(t, env, DefaultConfig())
	if err := s.Write(t.Context(), committed()); err != nil {
		t.Fatal(err)
	}
	metrics := readJSON(t, filepath.Join(dir, "refresh-ips.json"))["metrics"].(map[string]any)
	for k, v := range map[string]float64{"greynoise_quota_remaining": 42, "greynoise_not_found": 3, "greynoise_rate_limited": 2} {
		if metrics[k] != v {
			t.Errorf("metrics.%s = %v; want %v", k, metrics[k], v)
		}
	}
}

func TestUnknownTotalIsProcessed(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	s := newSink(t, testEnv(dir, c), DefaultConfig())
	if err := s.Write(t.Context(), committed()); err != nil {
		t.Fatal(err)
	}
	m := readJSON(t, filepath.Join(dir, "refresh-ips.json"))["metrics"].(map[string]any)
	if m["ips_total"] != 3.0 || m["ips_per_second"] != 0.0 {
		t.Errorf("ips_total %v, ips_per_second %v; want 3 and 0", m["ips_total"], m["ips_per_second"])
	}
}

func TestAtomicWriteLeavesNoTemp(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	s := newSink(t, testEnv(dir, c), &Config{})
	for range 5 {
		if err := s.Write(t.Context(), committed()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Finish(t.Context(), pipeline.Summary{State: pipeline.RunDone}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		if info, _ := e.Info(); info.Mode().Perm() != 0o644 {
			t.Errorf("%s mode %v; want 0644", e.Name(), info.Mode().Perm())
		}
	}
	if want := []string{"refresh-ips.json", "status.json", "status.json.lock"}; !slices.Equal(names, want) {
		t.Errorf("files %v; want %v", names, want)
	}
}

func TestAggregatePreservesOtherPhases(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	// As upstream's emitter writes it: another metrics shape, ingest_id null.
	upstream := `{"phase":"enrichment_refresh","ingest_id":null,"last_updated":"2024-01-01T00:00:00","metrics":{"ips_total":"all_stale","ips_processed":5},"checkpoint":{},"dead_letter":{"total":0},"status_file":"enrichment_refresh.json"}`
	initial := `{"last_updated":"2024-01-01T00:00:00","phases":{"enrichment_refresh":` + upstream + `}}`
	if err := os.WriteFile(filepath.Join(dir, "status.json"), []byte(initial), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newSink(t, testEnv(dir, c), DefaultConfig())
	if err := s.Write(t.Context(), committed()); err != nil {
		t.Fatal(err)
	}
	env := testEnv(dir, c)
	env.Pipeline = "backfill-sessions"
	other := newSink(t, env, DefaultConfig())
	if err := other.Finish(t.Context(), pipeline.Summary{State: pipeline.RunDone}); err != nil {
		t.Fatal(err)
	}

	b, _ := os.ReadFile(filepath.Join(dir, "status.json"))
	if !strings.Contains(string(b), upstream) {
		t.Errorf("upstream phase not kept byte for byte:\n%s", b)
	}
	agg, err := Read(dir)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if _, ok := agg.Foreign["enrichment_refresh"]; !ok {
		t.Errorf("upstream phase missing from Foreign: %v", agg.Foreign)
	}
	if got, want := agg.PhaseNames(), []string{"backfill-sessions", "refresh-ips"}; !slices.Equal(got, want) {
		t.Errorf("PhaseNames() = %v; want %v", got, want)
	}
	if p := agg.Phases["refresh-ips"]; p.Metrics.IPsProcessed != 3 || p.Metrics.State != "running" || p.StatusFile != "refresh-ips.json" {
		t.Errorf("refresh-ips = %+v", p)
	}
	if p := agg.Phases["backfill-sessions"]; p.Metrics.State != "done" {
		t.Errorf("backfill-sessions = %+v", p)
	}
}

func TestReadMissing(t *testing.T) {
	agg, err := Read(t.TempDir())
	if err != nil || len(agg.Phases) != 0 {
		t.Fatalf("Read of empty dir = %+v, %v", agg, err)
	}
}

func TestThrottle(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	s := newSink(t, testEnv(dir, c), &Config{Every: 5 * time.Second})
	processed := func() float64 {
		return readJSON(t, filepath.Join(dir, "refresh-ips.json"))["metrics"].(map[string]any)["ips_processed"].(float64)
	}
	steps := []struct {
		advance time.Duration
		want    float64
	}{
		{0, 3},               // the first batch always writes
		{time.Second, 3},     // too soon
		{3 * time.Second, 3}, // 4s since the last snapshot
		{time.Second, 12},    // 5s: written, with every batch counted
		{time.Second, 12},
	}
	for i, st := range steps {
		c.advance(st.advance)
		if err := s.Write(t.Context(), committed()); err != nil {
			t.Fatal(err)
		}
		if got := processed(); got != st.want {
			t.Errorf("step %d: ips_processed %v; want %v", i, got, st.want)
		}
	}
	if err := s.Finish(t.Context(), pipeline.Summary{State: pipeline.RunDone}); err != nil {
		t.Fatal(err)
	}
	if got := processed(); got != 15 {
		t.Errorf("final ips_processed %v; want 15", got)
	}
}

func TestFinishState(t *testing.T) {
	for _, state := range []pipeline.RunState{pipeline.RunDone, pipeline.RunFailed, pipeline.RunInterrupted} {
		t.Run(string(state), func(t *testing.T) {
			dir, c := t.TempDir(), newClock()
			s := newSink(t, testEnv(dir, c), DefaultConfig())
			if err := s.Write(t.Context(), committed()); err != nil {
				t.Fatal(err)
			}
			if err := s.Finish(t.Context(), pipeline.Summary{State: state}); err != nil {
				t.Fatal(err)
			}
			m := readJSON(t, filepath.Join(dir, "refresh-ips.json"))["metrics"].(map[string]any)
			if m["state"] != string(state) {
				t.Errorf("state %v; want %s", m["state"], state)
			}
			agg, err := Read(dir)
			if err != nil || agg.Phases["refresh-ips"].Metrics.State != string(state) {
				t.Errorf("aggregate state %q, %v", agg.Phases["refresh-ips"].Metrics.State, err)
			}
		})
	}
}

func TestDirectoryRule(t *testing.T) {
	base := t.TempDir()
	tests := []struct {
		name      string
		cfgDir    string
		statusDir string
		want      string
	}{
		{name: "config dir wins", cfgDir: filepath.Join(base, "cfg"), statusDir: filepath.Join(base, "flag"), want: filepath.Join(base, "cfg")},
		{name: "status-dir when config empty", statusDir: filepath.Join(base, "flag"), want: filepath.Join(base, "flag")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testEnv(tt.statusDir, newClock())
			s := newSink(t, env, &Config{Dir: tt.cfgDir, Every: time.Second})
			if s.Dir() != tt.want {
				t.Errorf("Dir() = %q; want %q", s.Dir(), tt.want)
			}
			if fi, err := os.Stat(tt.want); err != nil || !fi.IsDir() {
				t.Errorf("directory not created: %v", err)
			}
		})
	}
}

func TestChooseDir(t *testing.T) {
	base := t.TempDir()
	home := func() (string, error) { return filepath.Join(base, "home"), nil }
	noHome := func() (string, error) { return "", errors.New("no home") }
	dshield := filepath.Join(base, "dshield")
	missing := filepath.Join(base, "missing")
	if err := os.Mkdir(dshield, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, override, dshield string
		home                    func() (string, error)
		want                    string
	}{
		{name: "override", override: "/x", dshield: dshield, home: home, want: "/x"},
		{name: "dshield exists", dshield: dshield, home: home, want: dshield},
		{name: "home cache", dshield: missing, home: home, want: filepath.Join(base, "home", ".cache", "cowrie-enrich", "status")},
		{name: "no home", dshield: missing, home: noHome, want: filepath.Join(os.TempDir(), ".cache", "cowrie-enrich", "status")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := chooseDir(tt.override, tt.dshield, tt.home); got != tt.want {
				t.Errorf("chooseDir = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		env         func(pipeline.Env) pipeline.Env
		cfg         Config
		is          error
		errContains []string
	}{
		{
			name: "unwritable dir", cfg: Config{Dir: filepath.Join(file, "status")},
			is: ErrUnwritableDir, errContains: []string{filepath.Join(file, "status"), "--status-dir"},
		},
		{
			name: "phase clobbers aggregate", env: func(e pipeline.Env) pipeline.Env { e.Pipeline = "status"; return e },
			is: ErrPhaseName, errContains: []string{`"status"`},
		},
		{
			name: "phase with slash", env: func(e pipeline.Env) pipeline.Env { e.Pipeline = "../x"; return e },
			is: ErrPhaseName, errContains: []string{`"../x"`},
		},
		{name: "negative every", cfg: Config{Every: -time.Second}, errContains: []string{"every -1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testEnv(t.TempDir(), newClock())
			if tt.env != nil {
				env = tt.env(env)
			}
			_, err := New(env, &tt.cfg)
			if err == nil {
				t.Fatal("New succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			for _, s := range tt.errContains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestTransientWriteFailureDoesNotFailRun(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	var logs bytes.Buffer
	env := testEnv(dir, c)
	env.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s := newSink(t, env, &Config{})
	// The directory disappears mid-run (a cleanup job, an unmounted disk).
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := s.Write(t.Context(), committed()); err != nil {
			t.Fatalf("Write returned %v; want nil", err)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings for one failure streak; want 1:\n%s", n, logs.String())
	}
	if err := s.Finish(t.Context(), pipeline.Summary{State: pipeline.RunDone}); err == nil {
		t.Error("Finish reported no error for a missing directory")
	}
}

func TestSample(t *testing.T) {
	cfg, err := pipeline.DecodeSample(Spec)
	if err != nil {
		t.Fatalf("DecodeSample: %v", err)
	}
	if got := *cfg.(*Config); got != *DefaultConfig() {
		t.Errorf("sample decodes to %+v; want the defaults %+v", got, *DefaultConfig())
	}
}

// TestPeriodicSnapshotWithoutBatches shows a phase that commits nothing
// (the backfill's snapshot sweep) still refreshes its file, with the run's
// counters, until Close stops the ticker.
func TestPeriodicSnapshotWithoutBatches(t *testing.T) {
	dir := t.TempDir()
	env := testEnv(dir, newClock())
	env.Now = time.Now
	env.Progress.Add("sessions_written", 1234)
	s := newSink(t, env, &Config{Every: 10 * time.Millisecond})
	path := filepath.Join(dir, "refresh-ips.json")
	deadline := time.After(5 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			break
		}
		select {
		case <-deadline:
			t.Fatal("no snapshot was written without a batch")
		case <-time.After(5 * time.Millisecond):
		}
	}
	snap := readJSON(t, path)
	counters, _ := snap["metrics"].(map[string]any)["counters"].(map[string]any)
	if counters["sessions_written"] != float64(1234) {
		t.Errorf("metrics.counters = %v, want sessions_written 1234", counters)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
