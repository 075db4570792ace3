package staleips

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// TestOddSpellingsIndexUsableIntegration checks that PostgreSQL can answer
// the candidate query's odd spellings from idx_session_odd_ip: the index
// serves only a query that repeats its predicate (store.OddSpelling), so a
// change on either side would leave the source reading every session.
// Sequential scans are disabled because on a table this small the planner
// would rightly prefer one.
func TestOddSpellingsIndexUsableIntegration(t *testing.T) {
	db := testdb.Migrated(t, testdb.PostgresURL(t))
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, pgSettings); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(ctx, "EXPLAIN "+candidatesSQL(store.Postgres), time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan.String(), "idx_session_odd_ip") {
		t.Errorf("the plan does not read idx_session_odd_ip:\n%s", plan.String())
	}
}
