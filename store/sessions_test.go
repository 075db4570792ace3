package store_test

import (
	"context"
	"testing"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// TestSpellingIPMatchesSessionIPIntegration checks that for a session with
// a non-blank source_ip, SpellingIP of the column gives what SessionIP gives
// of the row, whatever the enrichment JSON says, on both dialects.
func TestSpellingIPMatchesSessionIPIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		db := testdb.Migrated(t, url)
		ctx := context.Background()
		rows := []struct{ source, want string }{
			{"81.2.69.1", "81.2.69.1"},
			{" ::FFFF:81.2.69.2 ", "81.2.69.2"},
			{"2A02:C7F::9", "2a02:c7f::9"},
			{"::ffff:2a02:c7f::9", "::ffff:2a02:c7f::9"},
			{"  NOT AN ADDRESS", "not an address"},
		}
		for i, r := range rows {
			err := db.Exec(ctx, "INSERT INTO session_summaries (session_id, source_ip, enrichment, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
				string(rune('a'+i)), r.source, `{"session": {"81.2.69.99": {}}, "dshield": {"ip": {"number": "81.2.69.98"}}}`, "2025-01-01 00:00:00", "2025-01-01 00:00:00")
			if err != nil {
				t.Fatal(err)
			}
		}
		q := `SELECT ` + store.SpellingIP(db.Dialect, "s.source_ip") + `, ` + store.SessionIP(db.Dialect, "s") + `
FROM session_summaries s ORDER BY session_id`
		got := testdb.Strings(t, db, q, 2)
		if len(got) != len(rows) {
			t.Fatalf("read %d rows, want %d", len(got), len(rows))
		}
		for i, g := range got {
			if spelling, session := g[0], g[1]; spelling != session || spelling != rows[i].want {
				t.Errorf("source_ip %q: SpellingIP %q, SessionIP %q, want %q", rows[i].source, spelling, session, rows[i].want)
			}
		}
	})
}
