package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Dialect is the kind of database behind a DB.
type Dialect string

// Supported dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DefaultURL is the database used when nothing else is configured.
const DefaultURL = "sqlite://cowrie-enrich.db"

// defaultMaxConns is the least number of PostgreSQL connections a store's
// pool opens, unless its URL sets pool_max_conns.
const defaultMaxConns = 8

// ErrUnsupportedURL is returned for database URLs of an unknown scheme.
var ErrUnsupportedURL = errors.New("unsupported database URL")

// DB is an open database. Exactly one of Pool (Postgres) and SQL (SQLite)
// is set.
type DB struct {
	Dialect Dialect
	Pool    *pgxpool.Pool
	SQL     *sql.DB
	// Path is the SQLite file path; empty for Postgres.
	Path     string
	redacted string
}

// Target is a parsed database URL.
type Target struct {
	Dialect Dialect
	// DSN is the pgx connection string or the SQLite file path.
	DSN string
}

// Parse turns a database URL into a Target:
// postgres:// and postgresql:// URLs, sqlite://relative.db,
// sqlite:///absolute.db, or a bare path ending in .db or .sqlite.
func Parse(raw string) (Target, error) {
	s := strings.TrimSpace(raw)
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		return Target{Dialect: Postgres, DSN: s}, nil
	case strings.HasPrefix(lower, "sqlite://"):
		p := s[len("sqlite://"):]
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		if p == "" {
			return Target{}, fmt.Errorf("%w %q: sqlite:// needs a file path, e.g. sqlite://cowrie-enrich.db", ErrUnsupportedURL, Redact(raw))
		}
		return Target{Dialect: SQLite, DSN: p}, nil
	case strings.HasSuffix(lower, ".db"), strings.HasSuffix(lower, ".sqlite"), strings.HasSuffix(lower, ".sqlite3"):
		return Target{Dialect: SQLite, DSN: s}, nil
	}
	return Target{}, fmt.Errorf("%w %q: use postgres://user@host/db, sqlite://file.db or a path ending in .db", ErrUnsupportedURL, Redact(raw))
}

// Redact returns the URL with any password replaced, for logs and errors.
func Redact(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.User == nil {
		if strings.Contains(raw, "@") {
			return "<redacted>"
		}
		return raw
	}
	return u.Redacted()
}

// Options tune OpenWith. The zero value is what Open uses.
type Options struct {
	// Tracer, when set, sees every statement sent to PostgreSQL (the bench
	// command counts them); SQLite ignores it.
	Tracer pgx.QueryTracer
}

// Open connects to the database at rawURL and checks that it answers.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	return OpenWith(ctx, rawURL, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, rawURL string, opts Options) (*DB, error) {
	t, err := Parse(rawURL)
	if err != nil {
		return nil, err
	}
	db := &DB{Dialect: t.Dialect, redacted: Redact(rawURL)}
	switch t.Dialect {
	case Postgres:
		cfg, err := pgxpool.ParseConfig(t.DSN)
		if err != nil {
			return nil, fmt.Errorf("parse database URL %s: %w", db.redacted, redactErr(err, rawURL))
		}
		// A URL's own application_name wins, so an operator (or a test
		// that must find this run's connections) can tell runs apart.
		if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
			cfg.ConnConfig.RuntimeParams["application_name"] = "cowrie-enrich"
		}
		cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
		// JIT compiles a statement when its estimated cost is high, which
		// the per-batch statements reach through the planner's estimates:
		// compiling then took a second of a 0.25 s statement. A URL's own
		// jit setting wins.
		if _, ok := cfg.ConnConfig.RuntimeParams["jit"]; !ok {
			cfg.ConnConfig.RuntimeParams["jit"] = "off"
		}
		// The inventory sink copies each batch into a temporary table; at
		// the default 8 MB of buffers for temporary tables a batch of
		// 5,000 enriched rows no longer fits and is written out to disk
		// and read back. The memory is taken only by connections that use
		// temporary tables. A URL's own temp_buffers setting wins.
		if _, ok := cfg.ConnConfig.RuntimeParams["temp_buffers"]; !ok {
			cfg.ConnConfig.RuntimeParams["temp_buffers"] = "64MB"
		}
		// A refresh holds up to six connections at once: the stale-IP
		// source's cursor, the inventory sink's batch being written and
		// the two it prepares, and the cache stage's lookups. pgxpool's
		// default (4 on a 2-core machine) kept them waiting for each
		// other. A URL's own pool_max_conns wins.
		if !strings.Contains(t.DSN, "pool_max_conns") {
			cfg.MaxConns = max(cfg.MaxConns, defaultMaxConns)
		}
		if opts.Tracer != nil {
			cfg.ConnConfig.Tracer = opts.Tracer
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("connect to %s: %w", db.redacted, redactErr(err, rawURL))
		}
		if err := pool.Ping(ctx); err != nil {
			pool.Close()
			return nil, fmt.Errorf("connect to %s: %w (is PostgreSQL running and the database created?)", db.redacted, redactErr(err, rawURL))
		}
		db.Pool = pool
	case SQLite:
		db.Path = t.DSN
		if dir := filepath.Dir(t.DSN); dir != "." {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("create directory for %s: %w", t.DSN, err)
			}
		}
		// WAL lets the source read while the sink writes; immediate
		// transactions take the write lock up front so concurrent writers
		// wait (busy_timeout) instead of failing on lock upgrade.
		dsn := "file:" + t.DSN + "?_pragma=busy_timeout(15000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
		sdb, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", t.DSN, err)
		}
		if err := sdb.PingContext(ctx); err != nil {
			sdb.Close()
			return nil, fmt.Errorf("open %s: %w", t.DSN, err)
		}
		db.SQL = sdb
	}
	return db, nil
}

// String returns the redacted URL.
func (db *DB) String() string { return db.redacted }

// Close releases the connections. It is safe to call more than once.
func (db *DB) Close() error {
	if db == nil {
		return nil
	}
	if db.Pool != nil {
		db.Pool.Close()
	}
	if db.SQL != nil {
		return db.SQL.Close()
	}
	return nil
}

// redactErr keeps a connection error from echoing the password.
func redactErr(err error, rawURL string) error {
	u, perr := url.Parse(strings.TrimSpace(rawURL))
	if perr != nil || u.User == nil {
		return err
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
}

// TimeLayout is how SQLite timestamps are stored: UTC, fixed width,
// microseconds, no zone (the layout SQLAlchemy uses), so text order is time
// order.
const TimeLayout = "2006-01-02 15:04:05.000000"

// FormatTime renders t for a SQLite timestamp column.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseTime reads a SQLite timestamp written by FormatTime or by upstream
// (naive UTC, optional fraction, optional zone).
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{TimeLayout, "2006-01-02 15:04:05.999999999", time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00", "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("parse timestamp %q", s)
}
