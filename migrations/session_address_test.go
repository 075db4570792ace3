package migrations_test

import (
	"context"
	"testing"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// TestSessionAddressFunctionMatchesExpressionIntegration guards the
// PostgreSQL function behind idx_session_missing_ip against drifting from
// store.SessionIP, which the stale-IP source uses inline.
func TestSessionAddressFunctionMatchesExpressionIntegration(t *testing.T) {
	db := testdb.Migrated(t, testdb.PostgresURL(t))
	ctx := context.Background()
	rows := []struct {
		source, enrichment any
		want               string
	}{
		{"81.2.69.1", nil, "81.2.69.1"},
		{" ::FFFF:81.2.69.2 ", nil, "81.2.69.2"},
		{nil, `{"session": {"2A02:C7F::9": {}, "81.2.69.99": {}}}`, "2a02:c7f::9"},
		{nil, `{"dshield": {"ip": {"number": "81.2.69.3"}}}`, "81.2.69.3"},
		{"", `{"session": "not an object", "dshield": {"ip": {"number": "81.2.69.4"}}}`, "81.2.69.4"},
		{nil, `{"session": []}`, ""},
		{nil, nil, ""},
	}
	for i, r := range rows {
		if err := db.Exec(ctx, "INSERT INTO session_summaries (session_id, source_ip, enrichment) VALUES (?, ?, ?::json)", string(rune('a'+i)), r.source, r.enrichment); err != nil {
			t.Fatal(err)
		}
	}
	q := `SELECT session_id, COALESCE(cowrie_enrich_session_ip(s.source_ip, s.enrichment::json), ''), COALESCE(` + store.SessionIP(store.Postgres, "s") + `, '')
FROM session_summaries s ORDER BY session_id`
	got := testdb.Strings(t, db, q, 3)
	if len(got) != len(rows) {
		t.Fatalf("read %d rows, want %d", len(got), len(rows))
	}
	for i, g := range got {
		if id, fn, inline := g[0], g[1], g[2]; fn != inline || fn != rows[i].want {
			t.Errorf("row %s: function %q, inline expression %q, want %q", id, fn, inline, rows[i].want)
		}
	}
}

// TestSessionAddressFunctionIsReplacedIntegration checks that migration 8
// reached the database: the function works the address out once.
func TestSessionAddressFunctionIsReplacedIntegration(t *testing.T) {
	db := testdb.Migrated(t, testdb.PostgresURL(t))
	var body string
	err := db.QueryRow(context.Background(), "SELECT prosrc FROM pg_proc WHERE proname = 'cowrie_enrich_session_ip' AND pronamespace = current_schema()::regnamespace",
		nil, &body)
	if err != nil {
		t.Fatal(err)
	}
	if want := " " + store.SessionIPQuery("cowrie_enrich_session_ip") + " "; body != want {
		t.Errorf("function body\n%s\nwant store.SessionIPQuery's\n%s", body, want)
	}
}
