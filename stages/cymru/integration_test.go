package cymru_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/cmd/cli"
	"github.com/cowrie-enrich/cowrie-enrich/internal/demodata"
	sim "github.com/cowrie-enrich/cowrie-enrich/internal/simulate/cymru"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
)

// TestRunIntegration runs `cowrie-enrich run` on PostgreSQL with the cymru
// stage pointed at the fakes, and checks what reached the inventory.
func TestRunIntegration(t *testing.T) {
	url := testdb.PostgresURL(t)
	db := testdb.Migrated(t, url)
	w := sim.NewWhois(t, sim.WhoisOptions{OmitNames: true}) // names come over DNS
	d := sim.NewDNS(t, sim.DNSOptions{})

	now := time.Now().UTC().Truncate(time.Microsecond)
	var sessions []demodata.Session
	for i, ip := range []string{"68.22.187.5", "68.22.187.5", "2001:4860:4860::8888", "104.16.1.1", "45.33.1.1", "10.0.0.1"} {
		sessions = append(sessions, demodata.Session{ID: "s" + string(rune('a'+i)), SourceIP: &ip,
			FirstEvent: now.Add(-time.Hour), LastEvent: now.Add(-time.Minute)})
	}
	if err := demodata.Insert(context.Background(), db, sessions); err != nil {
		t.Fatal(err)
	}

	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), cli.DefaultRegistry(), []string{"run", "testdata/cymru.yaml", "--db", url,
		"--status-dir", t.TempDir(),
		"--set", "stages.cymru.with.whois_addr=" + w.Addr(),
		"--set", "stages.cymru.with.dns_server=" + d.Addr()}, &out, &errb)
	if code != cli.ExitOK {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
	}
	if q := w.Stats().Queries; len(q) != 1 || len(q[0].IPs) != 4 {
		t.Errorf("whois queries %+v, want one carrying the 4 routable addresses", q)
	}

	type row struct {
		asn   sql.NullInt64
		cymru map[string]any
	}
	rows := map[string]row{}
	err := db.Query(context.Background(), `SELECT ip_address, current_asn, enrichment FROM ip_inventory`, nil, func(scan func(...any) error) error {
		var ip, doc string
		var r row
		if err := scan(&ip, &r.asn, &doc); err != nil {
			return err
		}
		var e map[string]json.RawMessage
		if err := json.Unmarshal([]byte(doc), &e); err != nil {
			return err
		}
		if c, ok := e["cymru"]; ok {
			if err := json.Unmarshal(c, &r.cymru); err != nil {
				return err
			}
		}
		rows[ip] = r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wants := []struct {
		ip, prefix, org, registry string
		asn                       int64
	}{
		{"68.22.187.5", "68.22.187.0/24", "TEAM-CYMRU - Team Cymru Inc., US", "arin", 23028},
		{"2001:4860:4860::8888", "2001:4860::/32", "GOOGLE - Google LLC, US", "arin", 15169},
		{"104.16.1.1", "104.16.0.0/13", "CLOUDFLARENET - Cloudflare, Inc., US", "arin", 13335},
	}
	for _, w := range wants {
		r, ok := rows[w.ip]
		if !ok {
			t.Errorf("%s: no inventory row", w.ip)
			continue
		}
		if !r.asn.Valid || r.asn.Int64 != w.asn {
			t.Errorf("%s: current_asn %v, want %d", w.ip, r.asn, w.asn)
		}
		if r.cymru["asn"] != float64(w.asn) || r.cymru["prefix"] != w.prefix || r.cymru["asn_org"] != w.org ||
			r.cymru["registry"] != w.registry || r.cymru["country"] != "US" || r.cymru["cached_at"] == nil {
			t.Errorf("%s: enrichment.cymru = %v", w.ip, r.cymru)
		}
		var org, registry string
		if err := db.QueryRow(context.Background(), `SELECT organization_name, rir_registry FROM asn_inventory WHERE asn_number = ?`,
			[]any{w.asn}, &org, &registry); err != nil {
			t.Errorf("asn_inventory %d: %v", w.asn, err)
		} else if org != w.org || registry != w.registry {
			t.Errorf("asn_inventory %d: organization_name %q, rir_registry %q; want %q, %q", w.asn, org, registry, w.org, w.registry)
		}
	}
	if r, ok := rows["45.33.1.1"]; !ok || r.asn.Valid || r.cymru != nil {
		t.Errorf("45.33.1.1 (not routed): row %v present %v, want a row without asn or cymru data", r, ok)
	}
}
