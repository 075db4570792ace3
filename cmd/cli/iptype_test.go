package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cowrie-enrich/cowrie-enrich/cmd/cli"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
)

// TestIPTypeIntegration runs refresh and then backfill on PostgreSQL with
// the iptype stage pointed at a TOR list and an AWS range file: ip_types
// and the sessions' snapshot_ip_type are filled from the classification,
// by the inventory sink during refresh and by the backfill's sweep.
func TestIPTypeIntegration(t *testing.T) {
	url := testdb.PostgresURL(t)
	db := testdb.Migrated(t, url)
	ctx := context.Background()
	dir := t.TempDir()
	tor := filepath.Join(dir, "tor-exits.txt")
	aws := filepath.Join(dir, "ip-ranges.json")
	if err := os.WriteFile(tor, []byte("45.142.121.9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(aws, []byte(`{"syncToken":"1","createDate":"2025-11-20-12-00-00",
"prefixes":[{"ip_prefix":"52.95.0.0/16","region":"us-east-1","service":"EC2","network_border_group":"us-east-1"}],
"ipv6_prefixes":[{"ipv6_prefix":"2600:1f18::/33","region":"us-east-1","service":"EC2","network_border_group":"us-east-1"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	exec := func(qs ...string) {
		t.Helper()
		for _, q := range qs {
			if err := db.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}
	exec(`INSERT INTO session_summaries (session_id, source_ip, first_event_at) VALUES ('a', '45.142.121.9', '2025-01-10 00:00:00')`,
		`INSERT INTO session_summaries (session_id, source_ip, first_event_at) VALUES ('b', '10.1.2.3', '2025-01-10 00:00:00')`)

	args := append(simulated(t), "--db", url, "--status-dir", t.TempDir(),
		"--set", "stages.iptype.with.tor_exits="+tor, "--set", "stages.iptype.with.aws_ranges="+aws)
	reg := cli.DefaultRegistry()
	if code, out, errOut := invoke(t, ctx, reg, append([]string{"refresh", "--ips", "0"}, args...)...); code != cli.ExitOK {
		t.Fatalf("refresh: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	snapshot := func(session string) string {
		t.Helper()
		var v *string
		if err := db.QueryRow(ctx, "SELECT snapshot_ip_type FROM session_summaries WHERE session_id = $1", []any{session}, &v); err != nil {
			t.Fatal(err)
		}
		if v == nil {
			return "<null>"
		}
		return *v
	}
	ipTypes := func(ip string) string {
		t.Helper()
		var v string
		if err := db.QueryRow(ctx, "SELECT array_to_string(ip_types, ',') || '|' || (enrichment->'ip_classification'->>'source') FROM ip_inventory WHERE ip_address = $1", []any{ip}, &v); err != nil {
			t.Fatalf("read %s: %v", ip, err)
		}
		return v
	}
	if got := snapshot("a"); got != "tor" {
		t.Errorf("after refresh: session a snapshot_ip_type %q, want tor", got)
	}
	if got := snapshot("b"); got != "bogon" {
		t.Errorf("after refresh: session b snapshot_ip_type %q, want bogon", got)
	}
	if got := ipTypes("45.142.121.9"); got != "tor|tor_exits" {
		t.Errorf("after refresh: ip_types|source of 45.142.121.9 = %q, want tor|tor_exits", got)
	}
	if got := ipTypes("10.1.2.3"); got != "bogon|validate" {
		t.Errorf("after refresh: ip_types|source of 10.1.2.3 = %q, want bogon|validate", got)
	}

	// New sessions: one of an address already classified, two of
	// addresses known only from the sessions (IPv4 and IPv6 in AWS's file).
	exec(`INSERT INTO session_summaries (session_id, source_ip, first_event_at) VALUES ('c', '45.142.121.9', '2025-01-11 00:00:00')`,
		`INSERT INTO session_summaries (session_id, source_ip, first_event_at, enrichment) VALUES ('d', NULL, '2025-01-12 00:00:00', '{"session":{"52.95.1.2":{}}}')`,
		`INSERT INTO session_summaries (session_id, source_ip, first_event_at) VALUES ('e', '2600:1f18::7', '2025-01-13 00:00:00')`)
	if code, out, errOut := invoke(t, ctx, reg, append([]string{"backfill", "--until", "2025-02-01"}, args...)...); code != cli.ExitOK {
		t.Fatalf("backfill: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for session, want := range map[string]string{"a": "tor", "b": "bogon", "c": "tor", "d": "cloud", "e": "cloud"} {
		if got := snapshot(session); got != want {
			t.Errorf("after backfill: session %s snapshot_ip_type %q, want %q", session, got, want)
		}
	}
	for ip, want := range map[string]string{"52.95.1.2": "cloud|aws_ranges", "2600:1f18::7": "cloud|aws_ranges"} {
		if got := ipTypes(ip); got != want {
			t.Errorf("after backfill: ip_types|source of %s = %q, want %q", ip, got, want)
		}
	}
}
