package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"time"
)

// Exec runs a statement written with ? placeholders on either dialect.
// time.Time arguments are written in the dialect's timestamp form (see
// FormatTime). It suits small, infrequent statements; hot paths use the
// dialect's own API (pgx batches, prepared SQLite statements).
func (db *DB) Exec(ctx context.Context, q string, args ...any) error {
	args = db.args(args)
	if db.Dialect == Postgres {
		_, err := db.Pool.Exec(ctx, Rebind(q), args...)
		return err
	}
	_, err := db.SQL.ExecContext(ctx, q, args...)
	return err
}

// QueryRow runs a query written with ? placeholders and scans its single
// row into dest. SQLite timestamps should be scanned into strings and read
// with ParseTime.
func (db *DB) QueryRow(ctx context.Context, q string, args []any, dest ...any) error {
	args = db.args(args)
	if db.Dialect == Postgres {
		return db.Pool.QueryRow(ctx, Rebind(q), args...).Scan(dest...)
	}
	return db.SQL.QueryRowContext(ctx, q, args...).Scan(dest...)
}

// Query runs a query written with ? placeholders and calls f for each row
// with a scan function.
func (db *DB) Query(ctx context.Context, q string, args []any, f func(scan func(dest ...any) error) error) error {
	args = db.args(args)
	if db.Dialect == Postgres {
		rows, err := db.Pool.Query(ctx, Rebind(q), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		return each(rows, f)
	}
	rows, err := db.SQL.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	return each(rows, f)
}

// each calls f for every row of rows (pgx.Rows or *sql.Rows).
func each(rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}, f func(scan func(dest ...any) error) error) error {
	for rows.Next() {
		if err := f(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (db *DB) args(args []any) []any {
	if db.Dialect != SQLite {
		return args
	}
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case time.Time:
			out[i] = FormatTime(v)
		case *time.Time:
			if v == nil {
				out[i] = nil
			} else {
				out[i] = FormatTime(*v)
			}
		default:
			out[i] = a
		}
	}
	return out
}

// Rebind turns ? placeholders into PostgreSQL's $1, $2, … It does not look
// inside string literals, so queries passed to it must not contain a
// literal question mark.
func Rebind(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// NullString maps "" to SQL NULL.
func NullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
