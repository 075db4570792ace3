package cli_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/cowrie-enrich/cowrie-enrich/cmd/cli"
	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
)

// TestHostileSessionValuesIntegration stores hostile source_ip values in
// session_summaries next to one good address and runs refresh-ips on both
// dialects: the run succeeds, no hostile value reaches a provider, no SQL
// fragment runs (the tables are intact) and only the good address is
// enriched.
func TestHostileSessionValuesIntegration(t *testing.T) {
	hostile := []struct{ name, value string }{
		{"huge string", strings.Repeat("9", 40)},
		{"NUL byte", "45.142.121.9\x00"},
		{"SQL fragment", "1.2.3.4'); DROP TABLE session_summaries; --"},
		{"look-alike digits", "４５.１４２.１２１.１０"},
		{"zone identifier", "fe80::1%eth0"},
		{"zone on a public address", "2a01:4f8::1%eth0"},
		{"CIDR", "45.142.121.0/24"},
		{"bidi override", "\u202e45.142.121.11"},
	}
	testdb.Dialects(t, func(t *testing.T, url string) {
		db := testdb.Migrated(t, url)
		ctx := context.Background()
		insert := func(id, ip string) {
			t.Helper()
			if err := db.Exec(ctx, `INSERT INTO session_summaries (session_id, source_ip, first_event_at, last_event_at) VALUES ($1, $2, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`, id, ip); err != nil {
				t.Fatalf("insert %q: %v", ip, err)
			}
		}
		insert("good", "45.142.121.200")
		stored := 1
		for i, h := range hostile {
			// PostgreSQL refuses NUL bytes in text: such a row cannot exist there.
			if strings.Contains(url, "postgres") && strings.ContainsRune(h.value, 0) {
				continue
			}
			insert("hostile"+string(rune('a'+i)), h.value)
			stored++
		}
		svc, err := simulate.Start(t.TempDir(), simulate.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Close()
		args := []string{"run", "refresh-ips", "--db", url, "--status-dir", t.TempDir(), "--progress", "never", "--set", "stages.greynoise.with.rate=2000"}
		for _, s := range svc.Sets() {
			args = append(args, "--set", s)
		}
		code, out, errOut := invoke(t, ctx, nil, args...)
		if code != cli.ExitOK {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		if len(svc.GreyNoise.Requests()) == 0 {
			t.Fatalf("GreyNoise was never asked: the test would prove nothing")
		}
		for _, r := range svc.GreyNoise.Requests() {
			for _, ip := range append(r.IPs, r.Path) {
				if !strings.Contains(ip, "45.142.121.200") {
					t.Errorf("GreyNoise was asked %q", ip)
				}
			}
		}
		for _, name := range svc.DNS.Names() {
			if strings.ContainsAny(name, "%'\x00 ") {
				t.Errorf("DNS was asked %q", name)
			}
		}
		var sessions int
		if err := db.QueryRow(ctx, "SELECT count(*) FROM session_summaries", nil, &sessions); err != nil {
			t.Fatalf("session_summaries after the run: %v", err)
		}
		if sessions != stored {
			t.Errorf("session_summaries holds %d rows, want %d", sessions, stored)
		}
		inv := inventory(t, db)
		for ip := range inv {
			if a, err := netip.ParseAddr(ip); err != nil || a.Zone() != "" || a.String() != ip {
				t.Errorf("ip_inventory holds %q", ip)
			}
		}
		if _, ok := inv["45.142.121.200"]; !ok {
			t.Errorf("the good address was not enriched: %v", inv)
		}
	})
}
