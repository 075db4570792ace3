package inventory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cowrie-enrich/cowrie-enrich/sinks/snapshots"
)

// PostgreSQL receives a batch's rows with one binary COPY into a
// temporary table that the session keeps (emptied at every commit), and
// writes every table with one set-based statement per batch, so a batch
// costs a handful of round trips whatever its size. COPY streams: the
// server parses the JSON of the rows already sent while the sink encodes
// the next ones.

// pgBatchTable holds the batch's rows for pgIPUpsert, one table per
// session. It is referenced as pg_temp.<name>, so a permanent table of the
// same name cannot stand in for it.
const pgBatchTable = "cowrie_enrich_ip_batch"

var pgBatchColumns = []string{"ip", "current_asn", "first_seen", "last_seen", "session_count", "enrichment", "enriched", "ip_type", "fresh"}

// pgBegin creates the session's batch table the first time (inside the
// transaction, which keeps it working behind a transaction-pooling
// proxy).
var pgBegin = `CREATE TEMP TABLE IF NOT EXISTS ` + pgBatchTable + ` (ip text, current_asn bigint, first_seen timestamptz,
    last_seen timestamptz, session_count bigint, enrichment jsonb, enriched boolean, ip_type text, fresh boolean) ON COMMIT DELETE ROWS`

// pgLock takes the writer lock for the rest of the transaction, then
// bounds how long the transaction's statements wait for a row lock
// ($1 ms). Other inventory writers are serialised by the lock, so a batch
// holding it waits for a row mostly when another process copied that row
// ahead (Prepare) and has not committed it yet. That process commits only
// once it takes the writer lock, so the wait never ends by itself, and
// PostgreSQL cannot see the cycle (the copy's transaction waits in the
// other process, not in the server). The batch fails with 55P03 instead,
// which releases the lock, and is written again (writeAttempts in all): a
// row held longer by a tool outside cowrie-enrich fails the batch.
var pgLock = `SELECT pg_advisory_xact_lock(` + strconv.FormatInt(writerLockKey, 10) + `), set_config('lock_timeout', $1, true)`

// rowLockTimeout is the lock_timeout of a batch once it holds the writer
// lock (see pgLock); a variable so that tests can shorten it.
var rowLockTimeout = 5 * time.Second

// pgASNUpsert ensures a batch's ASN rows in one statement: it inserts the
// missing ones (counters 0, recounted or moved by pending changes like any
// other), fills organisation data only where a stored row lacks it
// (asnOrgFill), and records each ASN's counter change in
// cowrie_enrich_asn_pending. A stored row is not written at all when its
// organisation data is complete, nor even read when this run stored it
// and offered the same fields before (asnRow.ensured). Rewriting every ASN
// a batch touches (nearly all of them, a few thousand rows) cost more than
// a tenth of a refresh, as each rewrite of a row the batches' foreign-key
// checks lock makes PostgreSQL track the lockers and the new version
// together. The fill cannot see the rows the insert adds (one snapshot),
// which have their data already.
var pgASNUpsert = `WITH u AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $6::bigint[], $7::bigint[], $8::boolean[])
        WITH ORDINALITY AS u(asn, org, country, registry, ips, sessions, ensured, n)
), inserted AS (
    INSERT INTO asn_inventory AS a ` + asnColumns + `
    SELECT u.asn, NULLIF(u.org, ''), NULLIF(u.country, ''), NULLIF(u.registry, ''), $5, $5, 0, 0, '{}', $5, $5
    FROM u WHERE NOT u.ensured ORDER BY u.n
    ON CONFLICT (asn_number) DO NOTHING
), filled AS (
    UPDATE asn_inventory AS a SET ` + asnOrgFill("NULLIF(u.org, '')", "NULLIF(u.country, '')", "NULLIF(u.registry, '')") + `
    FROM u
    WHERE a.asn_number = u.asn AND NOT u.ensured
      AND ((COALESCE(a.organization_name, '') = '' AND u.org <> '')
        OR (COALESCE(a.organization_country, '') = '' AND u.country <> '')
        OR (COALESCE(a.rir_registry, '') = '' AND u.registry <> ''))
)
INSERT INTO cowrie_enrich_asn_pending (asn_number, ips, sessions, seen_at)
SELECT u.asn, u.ips, u.sessions, $5 FROM u`

// pgPending records counter changes of ASNs the batch's rows leave.
const pgPending = `INSERT INTO cowrie_enrich_asn_pending (asn_number, ips, sessions, seen_at)
SELECT d.asn, d.ips, d.sessions, $4 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS d(asn, ips, sessions)`

// pgFoldASNs adds every pending change to its ASN's counters and empties
// cowrie_enrich_asn_pending; an ASN's last_seen becomes the time of its
// latest change.
const pgFoldASNs = `WITH d AS (
    DELETE FROM cowrie_enrich_asn_pending RETURNING asn_number, ips, sessions, seen_at
), s AS (
    SELECT asn_number, sum(ips) AS ips, sum(sessions) AS sessions, max(seen_at) AS seen_at FROM d GROUP BY asn_number
)
UPDATE asn_inventory AS a
SET unique_ip_count = a.unique_ip_count + s.ips, total_session_count = a.total_session_count + s.sessions,
    last_seen = GREATEST(a.last_seen, s.seen_at), updated_at = GREATEST(a.updated_at, s.seen_at)
FROM s WHERE a.asn_number = s.asn_number`

// pgExisting reads what the counters need of the stored rows, one index
// probe per address: with ip_address = ANY($1) the planner scans the whole
// table instead once a batch is a few percent of it (700 ms for 10,000
// addresses against 100,000 rows, 25 ms this way).
//
// It and pgCountASNs read ip_inventory, whose size changes under them, so
// they are planned for every batch (pgx.QueryExecModeExec: an unnamed
// statement): a generic plan cached while the table was nearly empty (a
// first run, a truncated table) would scan the whole table for every
// address, or every ASN, long after it has grown. The other statements
// keep their cached plans; forcing custom plans for the whole transaction
// would re-plan the foreign-key check of every inserted row.
const pgExisting = `SELECT o.ip_address, o.current_asn, o.session_count FROM unnest($1::text[]) AS b(ip)
CROSS JOIN LATERAL (SELECT i.ip_address, i.current_asn, i.session_count FROM ip_inventory AS i WHERE i.ip_address = b.ip LIMIT 1) AS o`

// pgIPRows are the staged rows as ip_inventory rows, fresh ones (see
// row.fresh) or the others. The enrichment column is JSONB on our schema
// and may be JSON on upstream's; both cast to and from jsonb on
// assignment, so one statement fits both.
func pgIPRows(fresh bool) string {
	return `INSERT INTO ip_inventory AS t ` + ipColumns + `
SELECT b.ip, b.current_asn, CASE WHEN b.current_asn IS NOT NULL THEN $1::timestamptz END, b.first_seen, b.last_seen,
    b.session_count, b.enrichment, CASE WHEN b.enriched THEN $1::timestamptz END, $1::timestamptz, $1::timestamptz,
    CASE WHEN b.ip_type = '' THEN ARRAY[]::text[] ELSE ARRAY[b.ip_type] END
FROM pg_temp.` + pgBatchTable + ` AS b WHERE b.fresh = ` + strconv.FormatBool(fresh) + "\n"
}

// pgIPUpsert writes the staged rows that are not fresh.
var pgIPUpsert = pgIPRows(false) + ipConflict(`CASE WHEN jsonb_typeof(t.enrichment::jsonb) = 'object' THEN t.enrichment::jsonb ELSE '{}'::jsonb END
    || excluded.enrichment::jsonb`, `'{}'::text[]`)

// pgIPInsert inserts the staged fresh rows whose address is not stored,
// and returns the addresses of the others. NOT IN a batch's addresses is
// one hash table, built once.
var pgIPInsert = `WITH ins AS (` + pgIPRows(true) + `ON CONFLICT (ip_address) DO NOTHING RETURNING t.ip_address)
SELECT b.ip FROM pg_temp.` + pgBatchTable + ` AS b WHERE b.fresh AND b.ip NOT IN (SELECT ip_address FROM ins)`

// pgASNsStored counts the given ASNs' rows.
const pgASNsStored = `SELECT count(*) FROM asn_inventory WHERE asn_number = ANY($1::bigint[])`

// pgUnfresh turns staged fresh rows into rows to upsert.
const pgUnfresh = `UPDATE pg_temp.` + pgBatchTable + ` SET fresh = false WHERE ip = ANY($1::text[])`

// pgFillSessions finds each address's sessions without a source_ip
// through the address function's partial index (migration 6). It runs
// after snapshots.NestedLoopsOnly, so the only plan left is a probe of
// that index per address: the planner would otherwise hash every such
// session for every batch. (Fencing the probes in a LATERAL subquery
// joined back by session_id gives the same probes plus a primary-key
// lookup per session: 1.5 to 3 times the cost on 2M sessions.)
const pgFillSessions = `UPDATE session_summaries AS s SET source_ip = b.ip
FROM unnest($1::text[]) AS b(ip)
WHERE s.source_ip IS NULL AND cowrie_enrich_session_ip(s.source_ip, s.enrichment::json) = b.ip`

// pgCountASNs recomputes the counters of the given ASNs (the first time a
// run touches each) and refreshes their last_seen ($2); it counts through
// idx_ip_current_asn (planned per batch, see pgExisting). The count takes
// in every committed row, so the pending changes of those ASNs (another
// process's, or a stopped run's) are dropped with it.
const pgCountASNs = `WITH dropped AS (
    DELETE FROM cowrie_enrich_asn_pending WHERE asn_number = ANY($1::bigint[])
)
UPDATE asn_inventory AS a SET unique_ip_count = c.ips, total_session_count = c.sessions,
    last_seen = GREATEST(a.last_seen, $2), updated_at = $2
FROM unnest($1::bigint[]) AS x(asn)
CROSS JOIN LATERAL (
    SELECT count(*) AS ips, COALESCE(sum(i.session_count), 0) AS sessions
    FROM ip_inventory i WHERE i.current_asn = x.asn
) AS c
WHERE a.asn_number = x.asn`

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
	fill []fill // statements run with the batch's addresses after the upsert
}

func (b *pgBackend) begin(ctx context.Context) (batchTx, error) {
	tx, err := b.beginUnlocked(ctx)
	if err != nil {
		return nil, err
	}
	if err := tx.lock(ctx); err != nil {
		_ = tx.rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	return tx, nil
}

// beginUnlocked opens a transaction that can stage a batch (Sink.Prepare)
// without the writer lock: the batch table is the connection's own, so
// staging takes no lock another writer could wait for.
func (b *pgBackend) beginUnlocked(ctx context.Context) (batchTx, error) {
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, pgBegin); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("create batch table: %w", err)
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
// errors below the protocol: a closed or reset connection. It also
// reports 40P01 and 55P03: a batch whose transaction was a deadlock's
// victim, or gave up waiting for a row (see pgLock), succeeds when
// written again; both happen when two processes write the same new
// address, one holding the writer lock and the other the address copied
// ahead by Prepare.
func (b *pgBackend) connError(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || slices.Contains([]string{"57P01", "57P02", "57P03", "40P01", "55P03"}, pgErr.Code)
	}
	var netErr net.Error
	return pgconn.SafeToRetry(err) || errors.As(err, &netErr) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// analyzeASNs runs ANALYZE, which invalidates every connection's cached
// plans on the table, the foreign-key checks' among them. A role that does
// not own the table gets a warning from the server and no error.
func (b *pgBackend) analyzeASNs(ctx context.Context) error {
	_, err := b.pool.Exec(ctx, "ANALYZE asn_inventory")
	return err
}

// vacuumPending runs VACUUM on the pending changes. SKIP_LOCKED leaves the
// table to another worker's VACUUM already at it instead of waiting.
func (b *pgBackend) vacuumPending(ctx context.Context) error {
	_, err := b.pool.Exec(ctx, "VACUUM (SKIP_LOCKED) cowrie_enrich_asn_pending")
	return err
}

// reset closes the pool's idle connections; those in use close when
// released.
func (b *pgBackend) reset() { b.pool.Reset() }

type pgTx struct {
	tx     pgx.Tx
	fill   []fill
	staged bool // the batch table holds rows of this transaction
	locked bool // the transaction holds the writer lock
}

func (t *pgTx) lock(ctx context.Context) error {
	if t.locked {
		return nil
	}
	if _, err := t.tx.Exec(ctx, pgLock, strconv.FormatInt(rowLockTimeout.Milliseconds(), 10)); err != nil {
		return fmt.Errorf("take writer lock: %w", err)
	}
	t.locked = true
	return nil
}

// stage copies rows into the batch table, encoding each one's enrichment
// as pgx sends the rows before it.
func (t *pgTx) stage(ctx context.Context, now time.Time, rows []*row) ([]*row, []refusal, error) {
	if t.staged {
		// Only a transaction writing rows one at a time stages twice.
		if _, err := t.tx.Exec(ctx, "DELETE FROM pg_temp."+pgBatchTable); err != nil {
			return nil, nil, err
		}
	}
	src := &pgCopySource{enc: encoding{rows: rows}, now: now}
	if _, err := t.tx.CopyFrom(ctx, pgx.Identifier{"pg_temp", pgBatchTable}, pgBatchColumns, src); err != nil {
		return nil, nil, err
	}
	t.staged = true
	return src.enc.kept, src.enc.refused, nil
}

// insertRows copies rows straight into ip_inventory, with the values
// pgIPUpsert gives a new row.
func (t *pgTx) insertRows(ctx context.Context, now time.Time, rows []*row) ([]*row, []refusal, error) {
	src := &pgCopySource{enc: encoding{rows: rows}, now: now, inventory: true}
	if _, err := t.tx.CopyFrom(ctx, pgx.Identifier{"ip_inventory"}, ipColumnNames, src); err != nil {
		return nil, nil, err
	}
	// Filling the sessions here, before the writer lock, takes the
	// longest part of a first run's batch (200,000 sessions to fill among
	// 10 million: 15 s of a refresh) off the writers' queue. No batch in
	// flight shares an address with this one (Sink.copyable), so none
	// fills the same sessions.
	return src.enc.kept, src.enc.refused, t.fillSessions(ctx, src.enc.kept)
}

func (t *pgTx) asnsStored(ctx context.Context, asns []int64) (bool, error) {
	if len(asns) == 0 {
		return true, nil
	}
	var n int
	err := t.tx.QueryRow(ctx, pgASNsStored, asns).Scan(&n)
	return n == len(asns), err
}

// pgCopySource feeds COPY the rows that encode: into the batch table
// (pgBatchColumns) or, with inventory, into ip_inventory (ipColumnNames).
// pgx reads it on its own goroutine and returns from CopyFrom only after
// that goroutine is done.
type pgCopySource struct {
	enc       encoding
	now       time.Time
	inventory bool
	cur       *row
	vals      [11]any
}

func (c *pgCopySource) Next() bool {
	c.cur = c.enc.next()
	return c.cur != nil
}

func (c *pgCopySource) Values() ([]any, error) {
	w := c.cur
	var asn *int64
	if w.asn != nil {
		asn = &w.asn.Number
	}
	first, last := c.now, c.now
	if w.sessions > 0 {
		first, last = w.first, w.last
	}
	if !c.inventory {
		c.vals = [11]any{w.ip, asn, first, last, w.sessions, w.docJSON, w.enriched, w.ipType, w.fresh}
		return c.vals[:len(pgBatchColumns)], nil
	}
	var verified, enriched *time.Time
	if asn != nil {
		verified = &c.now
	}
	if w.enriched {
		enriched = &c.now
	}
	types := []string{}
	if w.ipType != "" {
		types = []string{w.ipType}
	}
	c.vals = [11]any{w.ip, asn, verified, first, last, w.sessions, w.docJSON, enriched, c.now, c.now, types}
	return c.vals[:], nil
}

func (c *pgCopySource) Err() error { return nil }

func (t *pgTx) existing(ctx context.Context, rows []*row) (map[string]stored, error) {
	rs, err := t.tx.Query(ctx, pgExisting, pgx.QueryExecModeExec, addresses(rows))
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := make(map[string]stored)
	for rs.Next() {
		var ip string
		s := stored{found: true}
		if err := rs.Scan(&ip, &s.asn, &s.sessions); err != nil {
			return nil, err
		}
		out[ip] = s
	}
	return out, rs.Err()
}

func (t *pgTx) upsertASNs(ctx context.Context, now time.Time, asns []asnRow) error {
	if len(asns) == 0 {
		return nil
	}
	nums := make([]int64, len(asns))
	orgs := make([]string, len(asns))
	countries := make([]string, len(asns))
	registries := make([]string, len(asns))
	ips := make([]int64, len(asns))
	sessions := make([]int64, len(asns))
	ensured := make([]bool, len(asns))
	for i, a := range asns {
		nums[i], orgs[i], countries[i], registries[i], ips[i], sessions[i], ensured[i] = a.number, a.org, a.country, a.registry, a.ips, a.sessions, a.ensured
	}
	_, err := t.tx.Exec(ctx, pgASNUpsert, nums, orgs, countries, registries, now, ips, sessions, ensured)
	return err
}

func (t *pgTx) insertFresh(ctx context.Context, now time.Time) (map[string]bool, error) {
	rs, err := t.tx.Query(ctx, pgIPInsert, now)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	stored := map[string]bool{}
	for rs.Next() {
		var ip string
		if err := rs.Scan(&ip); err != nil {
			return nil, err
		}
		stored[ip] = true
	}
	return stored, rs.Err()
}

func (t *pgTx) unfresh(ctx context.Context, ips []string) error {
	_, err := t.tx.Exec(ctx, pgUnfresh, ips)
	return err
}

func (t *pgTx) upsertIPs(ctx context.Context, now time.Time, rows, known []*row, _ map[string]stored) error {
	if len(known) > 0 {
		if _, err := t.tx.Exec(ctx, pgIPUpsert, now); err != nil {
			return err
		}
	}
	return t.fillSessions(ctx, rows)
}

// fillSessions runs the fill statements for rows, which are in
// ip_inventory.
func (t *pgTx) fillSessions(ctx context.Context, rows []*row) error {
	planned := false
	for _, f := range t.fill {
		ips := f.addresses(rows)
		if len(ips) == 0 {
			continue
		}
		if !planned {
			if _, err := t.tx.Exec(ctx, snapshots.NestedLoopsOnly); err != nil {
				return err
			}
			planned = true
		}
		if _, err := t.tx.Exec(ctx, f.sql, ips); err != nil {
			return err
		}
	}
	return nil
}

func (t *pgTx) countASNs(ctx context.Context, now time.Time, asns []int64) error {
	if len(asns) == 0 {
		return nil
	}
	_, err := t.tx.Exec(ctx, pgCountASNs, pgx.QueryExecModeExec, asns, now)
	return err
}

func (t *pgTx) applyDeltas(ctx context.Context, now time.Time, deltas []asnDelta) error {
	if len(deltas) == 0 {
		return nil
	}
	asns := make([]int64, len(deltas))
	ips := make([]int64, len(deltas))
	sessions := make([]int64, len(deltas))
	for i, d := range deltas {
		asns[i], ips[i], sessions[i] = d.asn, d.ips, d.sessions
	}
	_, err := t.tx.Exec(ctx, pgPending, asns, ips, sessions, now)
	return err
}

func (t *pgTx) foldASNs(ctx context.Context) error {
	_, err := t.tx.Exec(ctx, pgFoldASNs)
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
