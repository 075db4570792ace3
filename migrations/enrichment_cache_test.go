package migrations_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/migrations"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// TestEnrichmentCacheIntegration checks step 4: a fresh database gets
// upstream's enrichment_cache (JSONB on PostgreSQL, TEXT on SQLite) with
// its unique key; an upstream database keeps its own table untouched
// (JSON cache_value on PostgreSQL, no extra index).
func TestEnrichmentCacheIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		ctx := context.Background()
		fresh := testdb.Migrated(t, url)
		want := map[store.Dialect]string{store.Postgres: "jsonb", store.SQLite: "text"}[fresh.Dialect]
		if got := columnType(t, fresh, "enrichment_cache", "cache_value"); got != want {
			t.Errorf("fresh cache_value type %q; want %q", got, want)
		}
		mustExec(t, fresh, `INSERT INTO enrichment_cache (service, cache_key, cache_value, expires_at) VALUES ('cymru', '192.0.2.1', '{}', '2030-01-01')`)
		if err := fresh.Exec(ctx, `INSERT INTO enrichment_cache (service, cache_key, cache_value, expires_at) VALUES ('cymru', '192.0.2.1', '{}', '2030-01-01')`); err == nil {
			t.Errorf("duplicate (service, cache_key) accepted; want uq_enrichment_cache_service_key to refuse it")
		}
	})
	t.Run("upstream postgres", func(t *testing.T) {
		db := testdb.Open(t, testdb.PostgresURL(t))
		body, err := os.ReadFile(filepath.Join("testdata", "upstream_postgres.sql"))
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, db, string(body))
		indexes := func() (n int) {
			if err := db.QueryRow(context.Background(), `SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'enrichment_cache'`, nil, &n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := indexes()
		if _, err := migrations.Apply(context.Background(), db); err != nil {
			t.Fatal(err)
		}
		if got := columnType(t, db, "enrichment_cache", "cache_value"); got != "json" {
			t.Errorf("upstream cache_value type %q after Apply; want upstream's json", got)
		}
		if after := indexes(); after != before {
			t.Errorf("upstream enrichment_cache has %d indexes after Apply; want its own %d", after, before)
		}
	})
}
