package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cowrie-enrich/cowrie-enrich/migrations"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// EnvPostgres names the variable holding the PostgreSQL server URL tests use.
const EnvPostgres = "COWRIE_ENRICH_TEST_POSTGRES"

// EnvRedis names the variable holding the Redis URL tests use.
const EnvRedis = "COWRIE_ENRICH_TEST_REDIS"

// RedisURL returns the URL of the test Redis server. A missing server
// fails the test: run ./scripts/test, which starts one.
func RedisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvRedis)
	if u == "" {
		t.Fatalf("%s is not set: run ./scripts/test (it starts PostgreSQL and Redis) or export %s=redis://host:6379/0", EnvRedis, EnvRedis)
	}
	return u
}

// PostgresURL returns the URL of a new, empty schema on the test server;
// the URL's search_path points at it. The schema is dropped when the test
// ends. A missing server fails the test: run ./scripts/test, which starts one.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		t.Fatalf("%s is not set: run ./scripts/test (it starts PostgreSQL and Redis) or export %s=postgres://user@host:5432/db", EnvPostgres, EnvPostgres)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to test PostgreSQL %s: %v", store.Redact(base), err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPostgres, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// SQLiteURL returns the URL of a new SQLite file in the test's temp dir.
func SQLiteURL(t testing.TB) string {
	t.Helper()
	return "sqlite://" + filepath.Join(t.TempDir(), "test.db")
}

// Open opens url and closes it when the test ends.
func Open(t testing.TB, url string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("open %s: %v", store.Redact(url), err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Migrated opens url and applies the migrations.
func Migrated(t testing.TB, url string) *store.DB {
	t.Helper()
	db := Open(t, url)
	if _, err := migrations.Apply(context.Background(), db); err != nil {
		t.Fatalf("migrate %s: %v", store.Redact(url), err)
	}
	return db
}

// Dialects runs f once per store: PostgreSQL and SQLite, each with a fresh
// empty database URL, as subtests named after the dialect.
func Dialects(t *testing.T, f func(t *testing.T, url string)) {
	t.Helper()
	t.Run("postgres", func(t *testing.T) { f(t, PostgresURL(t)) })
	t.Run("sqlite", func(t *testing.T) { f(t, SQLiteURL(t)) })
}

// SingleConnection returns a PostgreSQL URL (from PostgresURL) whose pool
// holds one connection, so that every statement a test makes through it
// runs in the same server process, and that process's statistics are
// what SeqScans reads.
func SingleConnection(t testing.TB) string {
	t.Helper()
	return PostgresURL(t) + "&pool_max_conns=1"
}

// SeqScans returns how many sequential scans of table (in db's schema)
// the server has counted. It first has the connection flush its own
// counts, which PostgreSQL otherwise does at most once a second: on a
// pool from SingleConnection the result includes every statement before
// it. It needs PostgreSQL 15 or later.
func SeqScans(t testing.TB, db *store.DB, table string) int64 {
	t.Helper()
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, "SELECT pg_stat_force_next_flush()"); err != nil {
		t.Fatalf("flush statistics (PostgreSQL 15 or later is needed): %v", err)
	}
	var n int64
	err := db.Pool.QueryRow(ctx, `SELECT seq_scan FROM pg_stat_user_tables
WHERE schemaname = current_schema() AND relname = $1`, table).Scan(&n)
	if err != nil {
		t.Fatalf("read sequential scans of %s: %v", table, err)
	}
	return n
}

// Strings runs q on db and returns its rows, each of its columns
// (columns of them) scanned as a string; an error fails the test.
func Strings(t testing.TB, db *store.DB, q string, columns int) [][]string {
	t.Helper()
	var out [][]string
	err := db.Query(context.Background(), q, nil, func(scan func(...any) error) error {
		row := make([]string, columns)
		dest := make([]any, columns)
		for i := range row {
			dest[i] = &row[i]
		}
		if err := scan(dest...); err != nil {
			return err
		}
		out = append(out, row)
		return nil
	})
	if err != nil {
		t.Fatalf("query %.60q: %v", q, err)
	}
	return out
}
