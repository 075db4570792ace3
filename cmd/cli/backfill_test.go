package cli_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cowrie-enrich/cowrie-enrich/cmd/cli"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
)

// TestBackfillIntegration runs the backfill command end to end: a dry run
// changes nothing, then the backfill enriches the address found only in a
// session's JSON (validate classifies the bogon) and fills every snapshot.
func TestBackfillIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		db := testdb.Migrated(t, url)
		ctx := context.Background()
		for _, q := range []string{
			`INSERT INTO session_summaries (session_id, source_ip, first_event_at, enrichment) VALUES ('a', NULL, '2025-01-10 00:00:00', '{"session":{"10.1.2.3":{}}}')`,
			`INSERT INTO session_summaries (session_id, source_ip, first_event_at, enrichment) VALUES ('b', '10.1.2.3', '2025-03-10 00:00:00', NULL)`,
			`INSERT INTO session_summaries (session_id, source_ip, first_event_at, enrichment) VALUES ('c', NULL, '2025-01-11 00:00:00', '{"session":{"45.142.121.9":{}}}')`,
		} {
			if err := db.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		reg := cli.DefaultRegistry()
		dir := t.TempDir()
		code, out, errOut := invoke(t, ctx, reg, "backfill", "--db", url, "--dry-run", "--status-dir", dir)
		if code != cli.ExitOK || !strings.Contains(out, "3 sessions lack a snapshot; 0 would get one") {
			t.Fatalf("dry run: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		public := "45.142.121.9"
		sim := simulated(t)
		code, out, errOut = invoke(t, ctx, reg, append([]string{"backfill", "--db", url, "--until", "2025-02-01", "--status-dir", dir, "--batch-size", "1"}, sim...)...)
		if code != cli.ExitOK {
			t.Fatalf("backfill: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		var filled int64
		var ipType, ip string
		if err := db.QueryRow(ctx, "SELECT count(*) FROM session_summaries WHERE enrichment_at IS NOT NULL", nil, &filled); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(ctx, "SELECT snapshot_ip_type, source_ip FROM session_summaries WHERE session_id = 'a'", nil, &ipType, &ip); err != nil {
			t.Fatal(err)
		}
		// Session b lies outside the window, but the inventory sink
		// fills the sessions of every address the run enriched.
		if filled != 3 || ipType != "bogon" || ip != "10.1.2.3" {
			t.Errorf("after backfill: %d sessions filled, a = %q/%q; want 3, bogon, 10.1.2.3", filled, ipType, ip)
		}
		// The address known only from c's JSON was enriched by the
		// (simulated) providers, then c got its snapshot from it.
		var asn int64
		var country string
		if err := db.QueryRow(ctx, "SELECT snapshot_asn, snapshot_country, source_ip FROM session_summaries WHERE session_id = 'c'", nil, &asn, &country, &ip); err != nil {
			t.Fatal(err)
		}
		if asn != 64601 || country != "RU" || ip != public {
			t.Errorf("session c: snapshot AS%d %q, source_ip %q; want AS64601 RU %s", asn, country, ip, public)
		}
	})
}
