package store_test

import (
	"context"
	"strconv"
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

// TestOddSpellingIntegration checks that every spelling OddSpelling calls
// ordinary is its own address (SpellingIP), that it flags the odd ones, and
// that it is NULL for NULL.
func TestOddSpellingIntegration(t *testing.T) {
	db := testdb.Open(t, testdb.PostgresURL(t))
	rows := []struct {
		spelling string
		odd      bool
	}{
		{"81.2.69.1", false},
		{"2a02:c7f::9", false},
		{"::1", false},
		{"not an address", false},
		{"2A02:C7F::9", true},
		{" 81.2.69.1", true},
		{"81.2.69.1 ", true},
		{"::ffff:81.2.69.2", true},
		{"::ffff:2a02:c7f::9", true},
		{"", true},
		{"  ", true},
	}
	for _, r := range rows {
		q := `SELECT COALESCE(CAST(` + store.OddSpelling("CAST($1 AS VARCHAR(45))") + ` AS TEXT), 'null'), ` + store.SpellingIP(store.Postgres, "CAST($1 AS VARCHAR(45))")
		var odd, address string
		if err := db.Pool.QueryRow(context.Background(), q, r.spelling).Scan(&odd, &address); err != nil {
			t.Fatalf("%q: %v", r.spelling, err)
		}
		if odd != strconv.FormatBool(r.odd) {
			t.Errorf("OddSpelling(%q) = %s, want %t", r.spelling, odd, r.odd)
		}
		if odd == "false" && address != r.spelling {
			t.Errorf("ordinary spelling %q has address %q", r.spelling, address)
		}
	}
	var isNull bool
	if err := db.Pool.QueryRow(context.Background(), `SELECT `+store.OddSpelling("CAST(NULL AS VARCHAR(45))")+` IS NULL`).Scan(&isNull); err != nil || !isNull {
		t.Errorf("OddSpelling(NULL) IS NULL = %t, %v; want true", isNull, err)
	}
}
