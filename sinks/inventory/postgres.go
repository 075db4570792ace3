package inventory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgreSQL writes each table with one statement per batch whose values
// are arrays, so a batch costs a handful of round trips whatever its size.

var pgASNUpsert = `INSERT INTO asn_inventory AS a ` + asnColumns + `
SELECT u.asn, NULLIF(u.org, ''), NULLIF(u.country, ''), NULLIF(u.registry, ''), $5, $5, 0, 0, '{}', $5, $5
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u(asn, org, country, registry, n)
ORDER BY u.n
` + asnConflict

// pgIPUpsert upserts the batch and returns, per ASN, how its address and
// session counts change: rows leaving an ASN count against it, rows
// arriving for it (or staying with new session counts) for it. Every CTE
// reads the snapshot from before the INSERT, so "old" holds the rows as
// they were. The enrichment column is JSONB on our schema and may be JSON
// on upstream's; both cast to and from jsonb on assignment, so one
// statement fits both.
var pgIPUpsert = `WITH batch AS (
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::timestamptz[], $5::bigint[], $6::text[], $7::bool[], $9::text[])
        AS u(ip, asn, first_seen, last_seen, sessions, doc, enriched, ip_type)
), old AS (
    SELECT i.current_asn, i.session_count FROM ip_inventory i JOIN batch b ON i.ip_address = b.ip
), up AS (
    INSERT INTO ip_inventory AS t ` + ipColumns + `
    SELECT b.ip, b.asn, CASE WHEN b.asn IS NOT NULL THEN $8::timestamptz END, b.first_seen, b.last_seen, b.sessions,
        b.doc::jsonb, CASE WHEN b.enriched THEN $8::timestamptz END, $8::timestamptz, $8::timestamptz,
        CASE WHEN b.ip_type = '' THEN ARRAY[]::text[] ELSE ARRAY[b.ip_type] END
    FROM batch b
    ` + ipConflict(`CASE WHEN jsonb_typeof(t.enrichment::jsonb) = 'object' THEN t.enrichment::jsonb ELSE '{}'::jsonb END
        || excluded.enrichment::jsonb`, `'{}'::text[]`) + `
    RETURNING t.current_asn, t.session_count
), delta AS (
    SELECT current_asn AS asn, -1 AS ips, -COALESCE(session_count, 0)::bigint AS sessions FROM old WHERE current_asn IS NOT NULL
    UNION ALL
    SELECT current_asn, 1, COALESCE(session_count, 0)::bigint FROM up WHERE current_asn IS NOT NULL
)
SELECT asn::bigint, sum(ips)::bigint, sum(sessions)::bigint FROM delta GROUP BY asn`

const pgFillSessions = `UPDATE session_summaries AS s SET source_ip = b.ip
FROM unnest($1::text[]) AS b(ip)
WHERE s.source_ip IS NULL AND cowrie_enrich_session_ip(s.source_ip, s.enrichment::json) = b.ip`

// pgCountASNs recomputes the counters of the given ASNs (the first time a
// run touches each), writing only those that changed; it counts through
// idx_ip_current_asn.
const pgCountASNs = `UPDATE asn_inventory AS a SET unique_ip_count = c.ips, total_session_count = c.sessions
FROM unnest($1::bigint[]) AS x(asn)
CROSS JOIN LATERAL (
    SELECT count(*) AS ips, COALESCE(sum(i.session_count), 0) AS sessions
    FROM ip_inventory i WHERE i.current_asn = x.asn
) AS c
WHERE a.asn_number = x.asn
  AND (a.unique_ip_count, a.total_session_count) IS DISTINCT FROM (c.ips, c.sessions)`

// pgApplyDeltas moves the counters of ASNs already recounted in this run
// by the batch's changes; the writer lock makes the read-modify-write safe.
const pgApplyDeltas = `UPDATE asn_inventory AS a
SET unique_ip_count = a.unique_ip_count + d.ips, total_session_count = a.total_session_count + d.sessions
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS d(asn, ips, sessions)
WHERE a.asn_number = d.asn`

// writerLockKey is the transaction-level advisory lock that serialises
// inventory writers ("invent" folded into an int64). Two workers writing
// overlapping IPs and ASNs would otherwise race: counters recomputed from
// snapshots that miss each other's rows, and row locks on ASNs taken in
// different statements in different orders. Writing is a small part of a
// run (providers are the bottleneck), so serialising it costs little.
const writerLockKey int64 = 0x696e76656e74

var pgDeadLetters = `INSERT INTO cowrie_enrich_dead_letters AS d ` + deadColumns + `
SELECT u.stage, u.raw, u.reason, $4, $5, $6, $6
FROM unnest($1::text[], $2::text[], $3::text[]) AS u(stage, raw, reason)
` + deadConflict

type pgBackend struct {
	pool *pgxpool.Pool
	fill []string // statements run with the batch's addresses after the upsert
}

func (b *pgBackend) begin(ctx context.Context) (batchTx, error) {
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", writerLockKey); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("take writer lock: %w", err)
	}
	return &pgTx{tx: tx, fill: b.fill}, nil
}

// dataError reports SQLSTATE classes 22 (data exception: overflow, value
// too long, bad encoding) and 23 (integrity constraint violation).
func (b *pgBackend) dataError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) < 2 {
		return false
	}
	class := pgErr.Code[:2]
	return class == "22" || class == "23"
}

// connError reports SQLSTATE class 08 (connection exception) and 57P01-03
// (the backend terminated by an administrator, a crash or a restart), and
// errors below the protocol: a closed or reset connection.
func (b *pgBackend) connError(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || slices.Contains([]string{"57P01", "57P02", "57P03"}, pgErr.Code)
	}
	var netErr net.Error
	return pgconn.SafeToRetry(err) || errors.As(err, &netErr) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// reset closes the pool's idle connections; those in use close when
// released.
func (b *pgBackend) reset() { b.pool.Reset() }

type pgTx struct {
	tx   pgx.Tx
	fill []string
}

func (t *pgTx) upsert(ctx context.Context, now time.Time, rows []*row) ([]asnDelta, error) {
	asns := asnRows(rows)
	if len(asns) > 0 {
		nums := make([]int64, len(asns))
		orgs := make([]string, len(asns))
		countries := make([]string, len(asns))
		registries := make([]string, len(asns))
		for i, a := range asns {
			nums[i], orgs[i], countries[i], registries[i] = a.number, a.org, a.country, a.registry
		}
		if _, err := t.tx.Exec(ctx, pgASNUpsert, nums, orgs, countries, registries, now); err != nil {
			return nil, err
		}
	}

	ips := make([]string, len(rows))
	rowASNs := make([]*int64, len(rows))
	firsts := make([]time.Time, len(rows))
	lasts := make([]time.Time, len(rows))
	sessions := make([]int64, len(rows))
	docs := make([]string, len(rows))
	enriched := make([]bool, len(rows))
	ipTypes := make([]string, len(rows))
	for i, w := range rows {
		ips[i], docs[i], enriched[i], ipTypes[i] = w.ip, string(w.docJSON), w.enriched, w.ipType
		if w.asn != nil {
			rowASNs[i] = &w.asn.Number
		}
		firsts[i], lasts[i] = now, now
		if w.sessions > 0 {
			firsts[i], lasts[i], sessions[i] = w.first, w.last, w.sessions
		}
	}
	rs, err := t.tx.Query(ctx, pgIPUpsert, ips, rowASNs, firsts, lasts, sessions, docs, enriched, now, ipTypes)
	if err != nil {
		return nil, err
	}
	deltas, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) (asnDelta, error) {
		var d asnDelta
		err := r.Scan(&d.asn, &d.ips, &d.sessions)
		return d, err
	})
	if err != nil {
		return nil, err
	}

	for _, q := range t.fill {
		if _, err := t.tx.Exec(ctx, q, ips); err != nil {
			return nil, err
		}
	}
	return deltas, nil
}

func (t *pgTx) countASNs(ctx context.Context, asns []int64) error {
	if len(asns) == 0 {
		return nil
	}
	_, err := t.tx.Exec(ctx, pgCountASNs, asns)
	return err
}

func (t *pgTx) applyDeltas(ctx context.Context, deltas []asnDelta) error {
	if len(deltas) == 0 {
		return nil
	}
	asns := make([]int64, len(deltas))
	ips := make([]int64, len(deltas))
	sessions := make([]int64, len(deltas))
	for i, d := range deltas {
		asns[i], ips[i], sessions[i] = d.asn, d.ips, d.sessions
	}
	_, err := t.tx.Exec(ctx, pgApplyDeltas, asns, ips, sessions)
	return err
}

func (t *pgTx) deadLetters(ctx context.Context, now time.Time, pipelineName, runID string, dead []deadLetter) error {
	if len(dead) == 0 {
		return nil
	}
	stages := make([]string, len(dead))
	raws := make([]string, len(dead))
	reasons := make([]string, len(dead))
	for i, d := range dead {
		stages[i], raws[i], reasons[i] = d.stage, d.raw, d.reason
	}
	_, err := t.tx.Exec(ctx, pgDeadLetters, stages, raws, reasons, pipelineName, runID, now)
	return err
}

func (t *pgTx) exec(ctx context.Context, sql string) error {
	_, err := t.tx.Exec(ctx, sql)
	return err
}

func (t *pgTx) commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t *pgTx) rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }
