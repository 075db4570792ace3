package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/cmd/cli"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// waitingSource emits its addresses, says so, and waits to be stopped.
type waitingSource struct {
	ips     []string
	emitted chan struct{}
}

func (s *waitingSource) Run(ctx context.Context, emit func(*pipeline.Record) error) error {
	for _, ip := range s.ips {
		if err := emit(pipeline.NewRecord(ip)); err != nil {
			return err
		}
	}
	close(s.emitted)
	<-ctx.Done()
	return ctx.Err()
}

// withSource returns the default registry plus src under the source type
// name, for tests that drive a run from their own source.
func withSource(t *testing.T, name string, src pipeline.Source) *pipeline.Registry {
	t.Helper()
	reg := cli.DefaultRegistry()
	if err := reg.Add(pipeline.SourceSpec(name, "a test source", "",
		func() *pipeline.NoConfig { return &pipeline.NoConfig{} },
		func(pipeline.Env, *pipeline.NoConfig) (pipeline.Source, error) { return src, nil })); err != nil {
		t.Fatal(err)
	}
	return reg
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}

// TestMetricsAndLiveStatusDuringARun scrapes a run that is still going:
// Prometheus metrics per component, dead letters by reason, the live
// status JSON and the page, then stops it with a cancel (SIGINT).
func TestMetricsAndLiveStatusDuringARun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &waitingSource{ips: []string{"81.2.69.1", "81.2.69.2", "2a02:c7f::7", "bogus"}, emitted: make(chan struct{})}
	reg := withSource(t, "waiting", src)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "live.yaml")
	os.WriteFile(cfg, []byte("version: 1\nname: live\nsource: {type: waiting}\nstages: [{type: validate}]\nsink: {type: inventory, with: {batch_size: 100, flush_interval: 10ms}}\n"), 0o644)
	addr := freeAddr(t)
	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := invoke(t, ctx, reg, "run", cfg, "--db", testdb.SQLiteURL(t), "--status-dir", dir, "--metrics-addr", addr, "--progress", "never")
		done <- result{code, out, errOut}
	}()
	<-src.emitted

	base := "http://" + addr
	var live struct {
		Pipeline     string   `json:"pipeline"`
		State        string   `json:"state"`
		Committed    int64    `json:"committed"`
		Chain        []string `json:"chain"`
		RecentErrors []struct {
			Input, Stage, Reason string
		} `json:"recent_errors"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for live.Committed < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("the run did not commit its 4 records: %+v", live)
		}
		if err := json.Unmarshal([]byte(get(t, base+"/status.json")), &live); err != nil {
			t.Fatal(err)
		}
	}
	if live.Pipeline != "live" || live.State != "running" || fmt.Sprint(live.Chain) != "[waiting validate inventory]" ||
		len(live.RecentErrors) != 1 || live.RecentErrors[0].Input != "bogus" || live.RecentErrors[0].Stage != "validate" {
		t.Errorf("status.json = %+v", live)
	}
	metrics := get(t, base+"/metrics")
	for _, want := range []string{
		`cowrie_enrich_records_in_total{component="validate",kind="stage",pipeline="live"} 4`,
		`cowrie_enrich_records_out_total{component="inventory",kind="sink",pipeline="live"} 4`,
		`cowrie_enrich_dead_letters_total{pipeline="live",reason="malformed address: not an ip address",stage="validate"} 1`,
		`cowrie_enrich_committed_records{pipeline="live"} 4`,
		`cowrie_enrich_batch_duration_seconds_count{component="inventory",kind="sink",pipeline="live"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	page := get(t, base+"/")
	if !strings.Contains(page, "<title>cowrie-enrich</title>") || strings.Contains(page, "src=\"http") || strings.Contains(page, "href=\"http") {
		t.Errorf("the status page must be self-contained HTML")
	}

	cancel()
	r := <-done
	if r.code != cli.ExitInterrupted {
		t.Errorf("exit %d, want 130: %s", r.code, r.err)
	}
	if _, err := http.Get(base + "/metrics"); err == nil {
		t.Errorf("the metrics server is still up after the run")
	}
}

func TestMetricsAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, _, errOut := invoke(t, context.Background(), nil, "run", "refresh-ips", "--db", testdb.SQLiteURL(t), "--metrics-addr", ln.Addr().String())
	if code != cli.ExitUsage || !strings.Contains(errOut, "--metrics-addr: listen tcp "+ln.Addr().String()) {
		t.Errorf("exit %d, %q", code, errOut)
	}
}
