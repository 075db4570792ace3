package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/cmd/cli"
	"github.com/cowrie-enrich/cowrie-enrich/internal/demodata"
	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/status"
	"github.com/cowrie-enrich/cowrie-enrich/stages/validate"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// invoke runs the command line and returns its exit code and output.
func invoke(t *testing.T, ctx context.Context, reg *pipeline.Registry, args ...string) (int, string, string) {
	t.Helper()
	if reg == nil {
		reg = cli.DefaultRegistry()
	}
	var out, errb bytes.Buffer
	code := cli.Main(ctx, reg, args, &out, &errb)
	return code, out.String(), errb.String()
}

// expectedAddresses returns the canonical addresses the inventory must
// hold after enriching sessions: every address validate accepts.
func expectedAddresses(sessions []demodata.Session) map[string]int64 {
	want := map[string]int64{}
	for _, s := range sessions {
		raw := s.Address()
		if a, err := validate.Parse(raw); err == nil {
			want[a.String()]++
		}
	}
	return want
}

// simulated starts the simulated providers and returns the --set
// overrides pointing a pipeline's provider stages at them, so no test
// reaches the internet.
func simulated(t *testing.T) []string {
	t.Helper()
	svc, err := simulate.Start(t.TempDir(), simulate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	// The real rate limit (10/s) would make a test of a few hundred
	// addresses take a minute.
	args := []string{"--set", "stages.greynoise.with.rate=2000"}
	for _, s := range svc.Sets() {
		args = append(args, "--set", s)
	}
	return args
}

type inventoryRow struct {
	sessions int64
	json     string
}

// inventory reads ip_inventory without the columns a rerun may change
// (timestamps and _meta).
func inventory(t *testing.T, db *store.DB) map[string]inventoryRow {
	t.Helper()
	rows := map[string]inventoryRow{}
	err := db.Query(context.Background(), `SELECT ip_address, session_count, enrichment FROM ip_inventory`, nil, func(scan func(...any) error) error {
		var ip, doc string
		var n int64
		if err := scan(&ip, &n, &doc); err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(doc), &m); err != nil {
			return err
		}
		delete(m, "_meta")
		// Timestamps are not compared: the IP type is classified afresh on
		// every run, with the run's time.
		if c, ok := m["ip_classification"].(map[string]any); ok {
			delete(c, "classified_at")
		}
		b, _ := json.Marshal(m)
		rows[ip] = inventoryRow{n, string(b)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestRunRefreshIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		db := testdb.Migrated(t, url)
		sessions := demodata.Generate(7, 1500, time.Now())
		if err := demodata.Insert(context.Background(), db, sessions); err != nil {
			t.Fatal(err)
		}
		statusDir := t.TempDir()
		sim := simulated(t)
		code, out, errOut := invoke(t, context.Background(), nil, append([]string{"run", "refresh-ips", "--db", url, "--status-dir", statusDir}, sim...)...)
		if code != cli.ExitOK {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		want := expectedAddresses(sessions)
		first := inventory(t, db)
		if len(first) != len(want) {
			t.Errorf("inventory holds %d addresses, want %d", len(first), len(want))
		}
		for ip, n := range want {
			if first[ip].sessions != n {
				t.Errorf("%s: session_count %d, want %d", ip, first[ip].sessions, n)
			}
		}
		if !strings.Contains(out, "refresh-ips done: ") {
			t.Errorf("stdout lacks the summary line: %q", out)
		}

		snap, err := status.Read(statusDir)
		if err != nil {
			t.Fatal(err)
		}
		m := snap.Phases["refresh-ips"].Metrics
		if m.State != "done" || m.IPsProcessed != int64(len(want))+m.IPErrors || m.IPErrors == 0 {
			t.Errorf("status metrics = %+v, want done with %d processed plus the dead letters", m, len(want))
		}

		// Nothing here was enriched by a provider, so every address is
		// still stale: the rerun rewrites them all and must change nothing.
		if code, out, errOut := invoke(t, context.Background(), nil, append([]string{"run", "refresh-ips", "--set", "source.with.stale_after=1ns", "--db", url, "--status-dir", statusDir}, sim...)...); code != cli.ExitOK {
			t.Fatalf("rerun exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		second := inventory(t, db)
		if len(second) != len(first) {
			t.Fatalf("rerun: %d rows, want %d", len(second), len(first))
		}
		for ip, r := range first {
			if second[ip] != r {
				t.Errorf("rerun changed %s: %+v → %+v", ip, r, second[ip])
			}
		}
	})
}

func TestRefreshLimitIntegration(t *testing.T) {
	url := testdb.SQLiteURL(t)
	db := testdb.Migrated(t, url)
	sessions := demodata.Generate(3, 600, time.Now())
	if err := demodata.Insert(context.Background(), db, sessions); err != nil {
		t.Fatal(err)
	}
	t.Setenv("COWRIE_ENRICH_DB", url)
	cacheDir := t.TempDir()
	code, out, errOut := invoke(t, context.Background(), nil, append([]string{"refresh", "--ips", "25", "--commit-interval", "10",
		"--status-dir", t.TempDir(), "--cache-dir", cacheDir}, simulated(t)...)...)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	var n int
	if err := db.QueryRow(context.Background(), "SELECT count(*) FROM ip_inventory", nil, &n); err != nil {
		t.Fatal(err)
	}
	var dead int
	if err := db.QueryRow(context.Background(), "SELECT count(*) FROM cowrie_enrich_dead_letters", nil, &dead); err != nil {
		t.Fatal(err)
	}
	if n+dead != 25 {
		t.Errorf("--ips 25 stored %d rows and %d dead letters, want 25 in all", n, dead)
	}
	if entries, _ := os.ReadDir(filepath.Join(cacheDir, "maxmind")); len(entries) == 0 {
		t.Errorf("--cache-dir %s holds no maxmind answers: the file tier was not used", cacheDir)
	}
}

func TestDryRunChangesNothingIntegration(t *testing.T) {
	url := testdb.SQLiteURL(t)
	db := testdb.Migrated(t, url)
	sessions := demodata.Generate(5, 200, time.Now())
	if err := demodata.Insert(context.Background(), db, sessions); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := invoke(t, context.Background(), nil, append([]string{"run", "refresh-ips", "--dry-run", "--db", url, "--status-dir", t.TempDir()}, simulated(t)...)...)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 10 {
		t.Fatalf("dry run printed %d lines, want one JSON object per address", len(lines))
	}
	for _, l := range lines {
		var rec struct {
			Enrichment *struct {
				Meta pipeline.Meta `json:"_meta"`
			} `json:"enrichment"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if rec.Enrichment != nil && (rec.Enrichment.Meta.RunID == "" || rec.Enrichment.Meta.Pipeline != "refresh-ips") {
			t.Fatalf("_meta lacks the run: %q", l)
		}
	}
	var n int
	if err := db.QueryRow(context.Background(), "SELECT (SELECT count(*) FROM ip_inventory) + (SELECT count(*) FROM cowrie_enrich_dead_letters) + (SELECT count(*) FROM cowrie_enrich_runs)", nil, &n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("dry run wrote %d rows", n)
	}
}

// blockingSource emits its addresses, then cancels the run (as a first
// SIGINT would) and waits to be stopped.
type blockingSource struct {
	ips    []string
	cancel context.CancelFunc
}

func (s *blockingSource) Run(ctx context.Context, emit func(*pipeline.Record) error) error {
	for _, ip := range s.ips {
		if err := emit(pipeline.NewRecord(ip)); err != nil {
			return err
		}
	}
	s.cancel()
	<-ctx.Done()
	return ctx.Err()
}

func TestInterruptDrainsAndExits130Integration(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &blockingSource{ips: []string{"81.2.69.1", "81.2.69.2", "2a02:c7f::7", "bogus"}, cancel: cancel}
	reg := withSource(t, "blocking", src)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "interrupt.yaml")
	os.WriteFile(cfg, []byte("version: 1\nname: interrupt\nsource: {type: blocking}\nstages: [{type: validate}]\nsink: {type: inventory, with: {batch_size: 1000, flush_interval: 1h}}\nside_sinks: [{type: status}]\n"), 0o644)
	url := testdb.SQLiteURL(t)
	code, out, errOut := invoke(t, ctx, reg, "run", cfg, "--db", url, "--status-dir", dir)
	if code != cli.ExitInterrupted {
		t.Fatalf("exit %d, want 130\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	db := testdb.Open(t, url)
	var n, dead int
	if err := db.QueryRow(context.Background(), "SELECT (SELECT count(*) FROM ip_inventory), (SELECT count(*) FROM cowrie_enrich_dead_letters)", nil, &n, &dead); err != nil {
		t.Fatal(err)
	}
	if n != 3 || dead != 1 {
		t.Errorf("after the drain: %d rows and %d dead letters, want 3 and 1 (nothing emitted may be lost)", n, dead)
	}
	snap, err := status.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := snap.Phases["interrupt"].Metrics; m.State != "interrupted" || m.IPsProcessed != 4 {
		t.Errorf("status = %+v, want interrupted with 4 processed", m)
	}
}

func TestExitCodesAndMessages(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nname: bad\nsource: {type: stale_ips, with: {stale_after: 30}}\nsink: {type: inventory}\n"), 0o644)
	unknown := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknown, []byte("version: 1\nname: x\nsource: {type: stale_ips}\nstages: [{type: geoip}]\nsink: {type: inventory}\n"), 0o644)
	tests := []struct {
		name        string
		args        []string
		code        int
		errContains string
	}{
		{"unknown command", []string{"enrich"}, cli.ExitUsage, `unknown command "enrich"`},
		{"unknown flag", []string{"run", "refresh-ips", "--fast"}, cli.ExitUsage, "unknown flag: --fast"},
		{"no such config", []string{"run", "nightly"}, cli.ExitUsage, `no built-in config named "nightly" (built in: `},
		{"missing file", []string{"run", filepath.Join(dir, "none.yaml")}, cli.ExitUsage, "read config: open "},
		{"bare duration", []string{"validate", bad}, cli.ExitUsage, bad + ":3: source.with.stale_after: duration needs a unit"},
		{"unknown stage", []string{"validate", unknown}, cli.ExitUsage, unknown + `:4: stages[0].type: unknown component type "geoip"`},
		{"refresh without --ips", []string{"refresh"}, cli.ExitUsage, "refresh needs --ips N"},
		{"refresh --sessions", []string{"refresh", "--ips", "0", "--sessions", "10"}, cli.ExitUsage, "--sessions and --files only accept 0"},
		{"bad database URL", []string{"run", "refresh-ips", "--db", "mysql://x"}, cli.ExitFailed, `unsupported database URL "mysql://x"`},
		{"unreachable database hides password", []string{"migrate", "--db", "postgres://u:hunter2@127.0.0.1:1/x"}, cli.ExitFailed, "postgres://u:xxxxx@127.0.0.1:1/x"},
		{"demo refuses postgres", []string{"demo", "--db", "postgres://127.0.0.1/x"}, cli.ExitUsage, "only runs on a SQLite file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := invoke(t, context.Background(), nil, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			if !strings.Contains(errOut, tt.errContains) {
				t.Errorf("stderr %q does not contain %q", errOut, tt.errContains)
			}
			if strings.Contains(out+errOut, "hunter2") {
				t.Errorf("the password reached the output")
			}
		})
	}
}

func TestValidateShippedConfigs(t *testing.T) {
	code, out, errOut := invoke(t, context.Background(), nil, "validate", "refresh-ips", "demo", "refresh-ips-producer", "refresh-ips-worker")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"ok refresh-ips (stale_ips → validate → dedupe → cache → maxmind → cymru → greynoise → iptype → inventory + status)",
		"ok refresh-ips-producer (stale_ips → validate → dedupe → redis_stream + status)",
		"ok refresh-ips-worker (redis_stream → validate → cache → maxmind → cymru → greynoise → iptype → inventory + status)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout = %q, want it to contain %q", out, want)
		}
	}
}

func TestStagesListsEveryBuiltin(t *testing.T) {
	code, out, _ := invoke(t, context.Background(), nil, "stages")
	if code != cli.ExitOK {
		t.Fatalf("exit %d", code)
	}
	for _, s := range cli.DefaultRegistry().Specs() {
		if !strings.Contains(out, string(s.Kind)) || !strings.Contains(out, s.Name) || !strings.Contains(out, s.Summary) {
			t.Errorf("stages output lacks %s %s: %q", s.Kind, s.Name, s.Summary)
		}
	}
}

func TestEverySampleDecodes(t *testing.T) {
	for _, s := range cli.DefaultRegistry().Specs() {
		if _, err := pipeline.DecodeSample(s); err != nil {
			t.Errorf("%s %s: %v", s.Kind, s.Name, err)
		}
	}
}

func TestMigrateAndStatusCommandsIntegration(t *testing.T) {
	url := testdb.PostgresURL(t)
	code, out, errOut := invoke(t, context.Background(), nil, "migrate", "--db", url)
	if code != cli.ExitOK || !strings.Contains(out, "applied inventory tables") {
		t.Fatalf("migrate: exit %d, %q %q", code, out, errOut)
	}
	if _, out, _ = invoke(t, context.Background(), nil, "migrate", "--db", url); !strings.Contains(out, "schema is current") {
		t.Errorf("second migrate: %q", out)
	}
	dir := t.TempDir()
	if _, out, _ := invoke(t, context.Background(), nil, "status", "--status-dir", dir); !strings.Contains(out, "no status in "+dir) {
		t.Errorf("status before any run: %q", out)
	}
	if code, _, errOut := invoke(t, context.Background(), nil, "run", "refresh-ips", "--db", url, "--status-dir", dir); code != 0 {
		t.Fatalf("run: %s", errOut)
	}
	code, out, _ = invoke(t, context.Background(), nil, "status", "--status-dir", dir)
	if code != 0 || !strings.Contains(out, "refresh-ips") || !strings.Contains(out, "done") {
		t.Errorf("status: exit %d, %q", code, out)
	}
}

func TestDemo(t *testing.T) {
	dir := t.TempDir()
	url := "sqlite://" + filepath.Join(dir, "demo.db")
	code, out, errOut := invoke(t, context.Background(), nil, "demo", "--db", url, "--sessions", "500", "--status-dir", dir)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"wrote 500 synthetic sessions", "TOP ATTACKERS", "BOGONS", "TOP COUNTRIES", "TOP ASNS", "GREYNOISE CLASSIFICATION", "malformed address: not an ip address", "simulated on loopback"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// A second demo replaces its own database...
	if code, _, errOut := invoke(t, context.Background(), nil, "demo", "--db", url, "--sessions", "100", "--status-dir", dir); code != 0 {
		t.Fatalf("second demo: %s", errOut)
	}
	// ...and refuses to touch anything else.
	other := filepath.Join(dir, "mine.db")
	testdb.Migrated(t, "sqlite://"+other)
	code, _, errOut = invoke(t, context.Background(), nil, "demo", "--db", "sqlite://"+other)
	if code != cli.ExitUsage || !strings.Contains(errOut, "was not created by demo") {
		t.Errorf("demo over a foreign database: exit %d, %q", code, errOut)
	}
}

func TestGraph(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "g.yaml")
	os.WriteFile(cfg, []byte("version: 1\nname: g\nsource: {type: ip_list}\nstages: [{type: validate, id: check}]\nsink: {type: inventory}\nside_sinks: [{type: status}]\n"), 0o644)
	tests := []struct {
		format, want string
	}{
		{"dot", `digraph "g" {
  rankdir=LR;
  node [shape=box, style=rounded];
  source_ip_list [label="ip_list"];
  stage_check [label="check (validate)"];
  sink_inventory [label="inventory"];
  side_status [label="status"];
  source_ip_list -> stage_check;
  stage_check -> sink_inventory;
  sink_inventory -> side_status [style=dashed, label="committed"];
}
`},
		{"mermaid", `flowchart LR
  source_ip_list["ip_list"]
  stage_check["check (validate)"]
  sink_inventory["inventory"]
  side_status["status"]
  source_ip_list --> stage_check
  stage_check --> sink_inventory
  sink_inventory -. committed .-> side_status
`},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			code, out, errOut := invoke(t, context.Background(), nil, "graph", cfg, "--format", tt.format)
			if code != cli.ExitOK || out != tt.want {
				t.Errorf("exit %d (%s), output:\n%s\nwant:\n%s", code, errOut, out, tt.want)
			}
		})
	}
	if code, _, errOut := invoke(t, context.Background(), nil, "graph", cfg, "--format", "png"); code != cli.ExitUsage || !strings.Contains(errOut, "--format must be dot or mermaid") {
		t.Errorf("bad format: exit %d, %q", code, errOut)
	}
}

func TestProgressModes(t *testing.T) {
	url := testdb.SQLiteURL(t)
	code, _, errOut := invoke(t, context.Background(), nil, "run", "refresh-ips", "--db", url, "--progress", "sometimes")
	if code != cli.ExitUsage || !strings.Contains(errOut, "--progress must be auto, always or never") {
		t.Errorf("exit %d, %q", code, errOut)
	}
	code, _, errOut = invoke(t, context.Background(), nil, "run", "refresh-ips", "--db", url, "--progress", "always", "--status-dir", t.TempDir())
	if code != cli.ExitOK || !strings.Contains(errOut, " IPs  ") {
		t.Errorf("--progress always: exit %d, stderr %q lacks the bar", code, errOut)
	}
}

// TestInterruptBeforeTheRunStarts: a signal while the database is being
// opened or migrated exits 130 and writes no inventory.
func TestInterruptBeforeTheRunStarts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	url := testdb.SQLiteURL(t)
	code, _, errOut := invoke(t, ctx, nil, "run", "refresh-ips", "--db", url, "--status-dir", t.TempDir())
	if code != cli.ExitInterrupted {
		t.Errorf("exit %d, want 130: %s", code, errOut)
	}
	db := testdb.Open(t, url)
	var n int
	if err := db.QueryRow(context.Background(), "SELECT count(*) FROM sqlite_master WHERE name = 'ip_inventory'", nil, &n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the interrupted start still migrated the database")
	}
}
