package inventory

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/stages/iptype"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

func withClass(r *pipeline.Record, ipType string) *pipeline.Record {
	r.Set(iptype.Key, &iptype.Classification{IPType: ipType, Source: iptype.SourceASNOrg, Confidence: 0.6})
	return r
}

// readIPTypes returns the ip_types column of ip as a list, in both
// dialects (TEXT[] on PostgreSQL, JSON array text on SQLite).
func readIPTypes(t *testing.T, db *store.DB, ip string) []string {
	t.Helper()
	col := "ip_types"
	if db.Dialect == store.Postgres {
		col = "to_json(ip_types)::text"
	}
	var raw string
	if err := queryRow(t, db, `SELECT `+col+` FROM ip_inventory WHERE ip_address = $1`, []any{ip}, &raw); err != nil {
		t.Fatalf("read ip_types of %s: %v", ip, err)
	}
	var out []string
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("ip_types of %s = %q: %v", ip, raw, err)
	}
	return out
}

// The ip_types column follows the record's ip_classification: set when a
// record carries one, kept when a later record does not, empty on a new row
// without one.
func TestWriteIntegration_IPTypes(t *testing.T) {
	eachShape(t, func(t *testing.T, db *store.DB) {
		s := newTestSink(t, db, t0, nil)
		steps := []struct {
			name string
			rec  *pipeline.Record
			ip   string
			want []string
		}{
			{"classified", withClass(withMaxMind(rec("198.51.100.7"), "US"), iptype.TypeCloud), "198.51.100.7", []string{"cloud"}},
			{"unclassified keeps", withMaxMind(rec("198.51.100.7"), "US"), "198.51.100.7", []string{"cloud"}},
			{"reclassified", withClass(rec("198.51.100.7"), iptype.TypeResidential), "198.51.100.7", []string{"residential"}},
			{"new row without", withMaxMind(rec("2001:db8::7"), "DE"), "2001:db8::7", []string{}},
			{"bogon", withClass(rec("10.0.0.1"), iptype.TypeBogon), "10.0.0.1", []string{"bogon"}},
		}
		for _, st := range steps {
			write(t, s, st.rec)
			if got := readIPTypes(t, db, st.ip); !slices.Equal(got, st.want) {
				t.Errorf("%s: ip_types = %q, want %q", st.name, got, st.want)
			}
		}
		r := mustReadIP(t, db, "198.51.100.7")
		c, _ := r.Enrichment[iptype.Key].(map[string]any)
		if c["ip_type"] != "residential" {
			t.Errorf("enrichment.ip_classification = %v, want ip_type residential", r.Enrichment[iptype.Key])
		}
	})
}
