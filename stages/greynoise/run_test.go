package greynoise_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/cmd/cli"
	"github.com/cowrie-enrich/cowrie-enrich/internal/demodata"
	fake "github.com/cowrie-enrich/cowrie-enrich/internal/simulate/greynoise"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/status"
)

// TestRunIntegration runs `cowrie-enrich run` on PostgreSQL with the
// greynoise stage against the fake: answers land in
// ip_inventory.enrichment.greynoise, is_scanner follows noise, IPv6 and
// bogons are never sent, and the key shows nowhere.
func TestRunIntegration(t *testing.T) {
	const key = "gn-run-key-7c9e"
	t.Setenv("GREYNOISE_TEST_KEY", key)
	srv := fake.New(fake.Options{Key: key, DailyQuota: 100, Rate: 50, Burst: 10, Records: map[string]fake.Record{
		"45.83.64.1":  {Noise: true, Classification: "malicious", Name: "unknown", LastSeen: "2025-11-20"},
		"104.16.0.1":  {RIOT: true, Classification: "benign", Name: "Cloudflare", LastSeen: "2025-11-21"},
		"71.6.135.11": {Noise: true, Classification: "benign", Name: "Shodan.io", LastSeen: "2025-11-22"},
	}})
	defer srv.Close()

	url := testdb.PostgresURL(t)
	db := testdb.Migrated(t, url)
	now := time.Now().Add(-time.Hour)
	var sessions []demodata.Session
	for i, ip := range []string{"45.83.64.1", "45.83.64.1", "104.16.0.1", "71.6.135.11", "185.220.101.5", "2a01:4f8::1", "10.0.0.5"} {
		sessions = append(sessions, demodata.Session{ID: fmt.Sprintf("s%d", i), SourceIP: &ip, FirstEvent: now, LastEvent: now})
	}
	if err := demodata.Insert(t.Context(), db, sessions); err != nil {
		t.Fatal(err)
	}

	statusDir := t.TempDir()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), cli.DefaultRegistry(), []string{"run", "testdata/greynoise-run.yaml",
		"--db", url, "--status-dir", statusDir, "--verbose",
		"--set", "stages.greynoise.with.base_url=" + srv.URL}, &out, &errb)
	if code != cli.ExitOK {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
	}
	if strings.Contains(out.String()+errb.String(), key) {
		t.Errorf("the key appears in the output:\n%s\n%s", out.String(), errb.String())
	}

	type row struct {
		greynoise, skip string
		scanner         bool
	}
	rows := map[string]row{}
	err := db.Query(t.Context(), `SELECT ip_address, COALESCE(enrichment->>'greynoise', ''),
		COALESCE(enrichment->'_meta'->'skip_reasons'->>'greynoise', ''), is_scanner FROM ip_inventory`, nil,
		func(scan func(...any) error) error {
			var ip string
			var r row
			if err := scan(&ip, &r.greynoise, &r.skip, &r.scanner); err != nil {
				return err
			}
			rows[ip] = r
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		noise, riot bool
		class       string
	}{
		"45.83.64.1": {true, false, "malicious"}, "104.16.0.1": {false, true, "benign"},
		"71.6.135.11": {true, false, "benign"}, "185.220.101.5": {false, false, "unknown"},
	}
	for ip, w := range want {
		var g struct {
			Noise          bool   `json:"noise"`
			RIOT           bool   `json:"riot"`
			Classification string `json:"classification"`
			LastSeen       string `json:"last_seen"`
			CachedAt       string `json:"cached_at"`
		}
		if err := json.Unmarshal([]byte(rows[ip].greynoise), &g); err != nil {
			t.Errorf("%s: enrichment.greynoise %q: %v", ip, rows[ip].greynoise, err)
			continue
		}
		if g.Noise != w.noise || g.RIOT != w.riot || g.Classification != w.class || g.CachedAt == "" {
			t.Errorf("%s: greynoise %+v; want %+v", ip, g, w)
		}
		if rows[ip].scanner != w.noise {
			t.Errorf("%s: is_scanner %v; want %v", ip, rows[ip].scanner, w.noise)
		}
	}
	if r := rows["2a01:4f8::1"]; r.greynoise != "" || r.skip != "community api is ipv4-only" {
		t.Errorf("IPv6 row: %+v; want skipped as ipv4-only", r)
	}
	if r := rows["10.0.0.5"]; r.greynoise != "" || r.skip != "" {
		t.Errorf("bogon row: %+v; want no greynoise at all", r)
	}
	for _, r := range srv.Requests() {
		if r.IPs[0] == "2a01:4f8::1" || r.IPs[0] == "10.0.0.5" {
			t.Errorf("sent %v to GreyNoise", r.IPs)
		}
	}
	if n := len(srv.Requests()); n != 4 {
		t.Errorf("%d requests; want one per routable IPv4 address (4)", n)
	}

	snap, err := status.Read(statusDir)
	if err != nil {
		t.Fatal(err)
	}
	m := snap.Phases["greynoise-test"].Metrics
	if m.GreyNoiseQuotaRemaining != 96 || m.GreyNoiseNotFound != 1 || m.GreyNoiseHits != 4 || m.State != "done" {
		t.Errorf("status metrics %+v; want 96 remaining, 1 not found, 4 hits, done", m)
	}
	var used int64
	if err := db.QueryRow(t.Context(), "SELECT used FROM cowrie_enrich_quota", nil, &used); err != nil || used != 4 {
		t.Errorf("cowrie_enrich_quota.used = %d, %v; want 4", used, err)
	}
}
