package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cowrie-enrich/cowrie-enrich/cmd/cli"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
)

// The bench at a tiny size, as a smoke test that it still works: the
// figures it prints are not checked, only that both runs enriched every
// address, that the all-cached run asked no provider and that each run
// left its CPU profile.
func TestBenchSmokeIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		const ips = 2560
		prof := filepath.Join(t.TempDir(), "cpu.out")
		code, out, errOut := invoke(t, context.Background(), cli.DefaultRegistry(), "bench", "--db", url,
			"--sessions", "6000", "--ips", "2560", "--cymru-latency", "5ms", "--progress", "never",
			"--redis", testdb.RedisURL(t), "--cpuprofile", prof)
		if code != 0 {
			t.Fatalf("bench exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		row := func(name string) []string {
			m := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(name) + ` \|(.*)\|$`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no %q row in the report:\n%s", name, out)
			}
			cells := strings.Split(m[1], "|")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			return cells
		}
		cold, cached := row("refresh, every provider asked"), row("refresh, every answer cached")
		ref := row("reference: one INSERT … SELECT … ON CONFLICT of the same rows")
		for name, cells := range map[string][]string{"cold": cold, "cached": cached, "reference": ref} {
			if cells[0] != "2560" {
				t.Errorf("%s run wrote %s IPs, want %d", name, cells[0], ips)
			}
		}
		// Columns: IPs, wall, IPs/s, vs reference, statements, whois
		// connections, whois addresses, peak RSS, peak heap. A tenth of
		// the addresses have no MaxMind ASN.
		if cold[6] == "0" || cold[5] == "0" {
			t.Errorf("the first run asked Cymru nothing: %v", cold)
		}
		if cached[5] != "0" || cached[6] != "0" {
			t.Errorf("the all-cached run asked Cymru: %v", cached)
		}
		for _, p := range []string{prof, prof + ".cached"} {
			if st, err := os.Stat(p); err != nil || st.Size() == 0 {
				t.Errorf("CPU profile %s: %v; want one per measured run", p, err)
			}
		}
	})
}

func TestBenchRefusesAForeignDatabase(t *testing.T) {
	url := testdb.SQLiteURL(t)
	db := testdb.Migrated(t, url)
	if err := db.Exec(context.Background(), "INSERT INTO session_summaries (session_id, source_ip) VALUES ('real', '203.0.113.9')"); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := invoke(t, context.Background(), cli.DefaultRegistry(), "bench", "--db", url, "--sessions", "10", "--ips", "5")
	if code != 1 || !strings.Contains(errOut, "sessions the bench did not generate") {
		t.Fatalf("exit %d, stderr %q; want 1 and a refusal", code, errOut)
	}
	var n int
	if err := db.QueryRow(context.Background(), "SELECT COUNT(*) FROM session_summaries", nil, &n); err != nil || n != 1 {
		t.Fatalf("sessions after the refusal: %d (%v), want the 1 real one untouched", n, err)
	}
}
