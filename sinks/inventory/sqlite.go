package inventory

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// SQLite runs in-process, so a prepared statement executed once per row
// costs no round trip. Enrichment JSON is merged in Go: json_patch would
// delete keys whose new value is null and merge nested objects, while a
// refreshed source must replace its stored object whole.

var sqliteASNUpsert = `INSERT INTO asn_inventory AS a ` + asnColumns + `
VALUES (?1, NULLIF(?2, ''), NULLIF(?3, ''), NULLIF(?4, ''), ?5, ?5, ?6, ?7, '{}', ?5, ?5)
` + asnConflict

var sqliteIPUpsert = `INSERT INTO ip_inventory AS t ` + ipColumns + `
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, CASE WHEN ?10 = '' THEN '[]' ELSE json_array(?10) END)
` + ipConflict("excluded.enrichment", "'[]'")

const sqliteExisting = `SELECT ip_address, enrichment, current_asn, session_count FROM ip_inventory
WHERE ip_address IN (SELECT value FROM json_each(?1))`

var sqliteFillSessions = `UPDATE session_summaries AS s SET source_ip = ` + store.SessionIP(store.SQLite, "s") + `
WHERE s.source_ip IS NULL AND ` + store.SessionIP(store.SQLite, "s") + ` IN (SELECT value FROM json_each(?1))`

// sqliteCountASNs recomputes the counters of the given ASNs in one pass
// over their addresses (through idx_ip_current_asn); see pgCountASNs.
const sqliteCountASNs = `UPDATE asn_inventory SET unique_ip_count = c.ips, total_session_count = c.sessions
FROM (
    SELECT j.value AS asn, count(i.ip_address) AS ips, COALESCE(sum(i.session_count), 0) AS sessions
    FROM json_each(?1) AS j LEFT JOIN ip_inventory i ON i.current_asn = j.value
    GROUP BY j.value
) AS c
WHERE asn_inventory.asn_number = c.asn
  AND (asn_inventory.unique_ip_count, asn_inventory.total_session_count) IS NOT (c.ips, c.sessions)`

// sqliteApplyDelta moves one ASN's counters by its delta (see
// pgApplyDeltas).
const sqliteApplyDelta = `UPDATE asn_inventory
SET unique_ip_count = unique_ip_count + ?2, total_session_count = total_session_count + ?3
WHERE asn_number = ?1`

var sqliteDeadLetter = `INSERT INTO cowrie_enrich_dead_letters AS d ` + deadColumns + `
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
` + deadConflict

type sqliteBackend struct {
	db   *sql.DB
	fill []fill // statements run with the batch's addresses after the upsert
}

func (b *sqliteBackend) begin(ctx context.Context) (batchTx, error) {
	// The store opens SQLite with _txlock=immediate: the write lock is taken
	// here, so reading the stored JSON and writing the merge is atomic.
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &sqliteTx{tx: tx, fill: b.fill}, nil
}

// dataError reports constraint violations, type mismatches and oversized
// values; busy, I/O and schema errors are not the data's fault.
func (b *sqliteBackend) dataError(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_TOOBIG:
		return true
	}
	return false
}

// connError is always false: SQLite runs in-process, and a busy file is
// already waited for by busy_timeout.
func (b *sqliteBackend) connError(error) bool { return false }

func (b *sqliteBackend) reset() {}

// analyzeASNs has nothing to do: SQLite checks a foreign key through the
// parent's primary key whatever its statistics say.
func (b *sqliteBackend) analyzeASNs(context.Context) error { return nil }

// vacuumPending has nothing to do: SQLite applies counter changes in place
// and leaves cowrie_enrich_asn_pending empty.
func (b *sqliteBackend) vacuumPending(context.Context) error { return nil }

type sqliteTx struct {
	tx   *sql.Tx
	fill []fill
}

// stage encodes the rows' enrichment (SQLite runs in-process, so there is
// nothing to overlap the encoding with) and refuses a row whose JSON is
// not valid, which PostgreSQL would refuse itself: mergeTop could not
// decode it.
func (t *sqliteTx) stage(_ context.Context, _ time.Time, rows []*row) ([]*row, []refusal, error) {
	e := encoding{rows: rows}
	var kept []*row
	for w := e.next(); w != nil; w = e.next() {
		if !json.Valid(w.docJSON) {
			e.refused = append(e.refused, refusal{row: w, err: errors.New("encode enrichment: a value's MarshalJSON wrote invalid JSON")})
			continue
		}
		kept = append(kept, w)
	}
	return kept, e.refused, nil
}

func (t *sqliteTx) upsertASNs(ctx context.Context, now time.Time, asns []asnRow) error {
	if len(asns) == 0 {
		return nil
	}
	stmt, err := t.tx.PrepareContext(ctx, sqliteASNUpsert)
	if err != nil {
		return err
	}
	defer stmt.Close()
	ts := store.FormatTime(now)
	for _, a := range asns {
		if _, err := stmt.ExecContext(ctx, a.number, a.org, a.country, a.registry, ts, a.ips, a.sessions); err != nil {
			return err
		}
	}
	return nil
}

func (t *sqliteTx) upsertIPs(ctx context.Context, now time.Time, rows, _ []*row, existing map[string]stored) error {
	ts := store.FormatTime(now)
	stmt, err := t.tx.PrepareContext(ctx, sqliteIPUpsert)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, w := range rows {
		old := existing[w.ip]
		doc, err := mergeTop(old.enrichment.String, w.docJSON)
		if err != nil {
			return err
		}
		var asn, verified, updated any
		if w.asn != nil {
			asn, verified = w.asn.Number, ts
		}
		if w.enriched {
			updated = ts
		}
		first, last := ts, ts
		if w.sessions > 0 {
			first, last = store.FormatTime(w.first), store.FormatTime(w.last)
		}
		if _, err := stmt.ExecContext(ctx, w.ip, asn, verified, first, last, w.sessions, string(doc), updated, ts, w.ipType); err != nil {
			return err
		}
	}
	for _, f := range t.fill {
		ips := f.addresses(rows)
		if len(ips) == 0 {
			continue
		}
		list, err := ipsJSON(ips)
		if err != nil {
			return err
		}
		if _, err := t.tx.ExecContext(ctx, f.sql, list); err != nil {
			return err
		}
	}
	return nil
}

// ipsJSON is addresses as a JSON array, the form json_each reads.
func ipsJSON(ips []string) (string, error) {
	b, err := json.Marshal(ips)
	return string(b), err
}

// existing reads the stored enrichment and ASN of the batch's addresses in
// one query.
func (t *sqliteTx) existing(ctx context.Context, rows []*row) (map[string]stored, error) {
	ips, err := ipsJSON(addresses(rows))
	if err != nil {
		return nil, err
	}
	rs, err := t.tx.QueryContext(ctx, sqliteExisting, ips)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := make(map[string]stored)
	for rs.Next() {
		var ip string
		s := stored{found: true}
		if err := rs.Scan(&ip, &s.enrichment, &s.asn, &s.sessions); err != nil {
			return nil, err
		}
		out[ip] = s
	}
	return out, rs.Err()
}

// mergeTop merges the top-level keys of doc into the stored JSON object:
// each key of doc replaces the stored value whole, every other stored key
// is kept. Stored text that is not a JSON object counts as empty, as the
// PostgreSQL statement does.
func mergeTop(storedJSON string, doc []byte) ([]byte, error) {
	var merged map[string]json.RawMessage
	if storedJSON != "" && json.Unmarshal([]byte(storedJSON), &merged) != nil {
		merged = nil
	}
	if merged == nil {
		merged = make(map[string]json.RawMessage)
	}
	var fresh map[string]json.RawMessage
	if err := json.Unmarshal(doc, &fresh); err != nil {
		return nil, fmt.Errorf("decode enrichment: %w", err)
	}
	for k, v := range fresh {
		merged[k] = v
	}
	return json.Marshal(merged)
}

func (t *sqliteTx) countASNs(ctx context.Context, _ time.Time, asns []int64) error {
	if len(asns) == 0 {
		return nil
	}
	b, err := json.Marshal(asns)
	if err != nil {
		return err
	}
	_, err = t.tx.ExecContext(ctx, sqliteCountASNs, string(b))
	return err
}

func (t *sqliteTx) applyDeltas(ctx context.Context, _ time.Time, deltas []asnDelta) error {
	if len(deltas) == 0 {
		return nil
	}
	stmt, err := t.tx.PrepareContext(ctx, sqliteApplyDelta)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, d := range deltas {
		if _, err := stmt.ExecContext(ctx, d.asn, d.ips, d.sessions); err != nil {
			return err
		}
	}
	return nil
}

func (t *sqliteTx) deadLetters(ctx context.Context, now time.Time, pipelineName, runID string, dead []deadLetter) error {
	if len(dead) == 0 {
		return nil
	}
	stmt, err := t.tx.PrepareContext(ctx, sqliteDeadLetter)
	if err != nil {
		return err
	}
	defer stmt.Close()
	ts := store.FormatTime(now)
	for _, d := range dead {
		if _, err := stmt.ExecContext(ctx, d.stage, d.raw, d.reason, pipelineName, runID, ts); err != nil {
			return err
		}
	}
	return nil
}

func (t *sqliteTx) exec(ctx context.Context, sql string) error {
	_, err := t.tx.ExecContext(ctx, sql)
	return err
}

// foldASNs has nothing to fold: SQLite applies counter changes in place.
// Its one writer at a time has no other transaction's locks to contend
// with, so rewriting an ASN row per batch costs microseconds.
func (t *sqliteTx) foldASNs(context.Context) error { return nil }

// lock has nothing to do: begin took SQLite's write lock.
func (t *sqliteTx) lock(context.Context) error { return nil }

func (t *sqliteTx) commit(context.Context) error   { return t.tx.Commit() }
func (t *sqliteTx) rollback(context.Context) error { return t.tx.Rollback() }
