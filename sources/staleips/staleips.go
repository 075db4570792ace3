package staleips

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

const sampleYAML = "stale_after: 720h\nlimit: 0\n"

// Spec registers the stale_ips source.
var Spec = pipeline.SourceSpec("stale_ips",
	"Addresses of sessions that are new to ip_inventory or older than stale_after, most recently active first.",
	sampleYAML, DefaultConfig, New)

// Config holds the options of the stale_ips source.
type Config struct {
	// StaleAfter is how old an inventory entry may be before it is
	// enriched again.
	StaleAfter time.Duration `koanf:"stale_after"`
	// Limit caps the number of addresses, most recently active first;
	// 0 means all.
	Limit int `koanf:"limit"`
}

// DefaultConfig returns the defaults: 30 days, no limit.
func DefaultConfig() *Config {
	return &Config{StaleAfter: 720 * time.Hour}
}

// Validate checks the options without I/O.
func (c *Config) Validate() error {
	if c.StaleAfter <= 0 {
		return fmt.Errorf("stale_after must be positive, got %s", c.StaleAfter)
	}
	if c.Limit < 0 {
		return fmt.Errorf("limit must be 0 (all) or positive, got %d", c.Limit)
	}
	return nil
}

// ErrNoStore is returned by New when the run has no database.
var ErrNoStore = errors.New("stale_ips needs a database (set database: or --db)")

// Source streams stale addresses from session_summaries.
type Source struct {
	db     *store.DB
	limit  int
	cutoff time.Time
	env    pipeline.Env
	total  *tally
}

var (
	_ pipeline.Source = (*Source)(nil)
	_ pipeline.Sizer  = (*Source)(nil)
)

// New builds the source. The staleness cut-off (now - stale_after) is taken
// here, once, so that every Run of the source selects the same addresses.
func New(env pipeline.Env, cfg *Config) (pipeline.Source, error) {
	if env.Store == nil {
		return nil, ErrNoStore
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("stale_ips: %w", err)
	}
	env = env.WithDefaults()
	return &Source{db: env.Store, limit: cfg.Limit, cutoff: env.Now().Add(-cfg.StaleAfter), env: env, total: newTally()}, nil
}

// candidatesSQL returns the candidate query for dialect d: one row per
// session address (address, first_seen, last_seen, session_count, whether
// ip_inventory lacks the address, whether some session has it only in its
// JSON, and the number of candidates before the limit), stale addresses
// only, most recently active first. Placeholders: the cut-off, then the
// limit.
//
// store.SessionIP is costly per row (string functions, and JSON parsing
// where source_ip is NULL), so it is never evaluated on every session, and
// the usual case, a spelling that already is its address, is never
// grouped twice:
//
//   - spellings groups the sessions that have a source_ip on the raw column,
//     as cheaply as a plain GROUP BY source_ip (10M sessions fold into about
//     as many rows as there are addresses), and works out each spelling's
//     address once (store.SpellingIP; empty for a blank one). Its ORDER BY,
//     with sorting disabled (pgSettings), leaves reading
//     idx_session_ip_activity in order as the plan, which aggregates
//     without hashing and without reading the session rows;
//   - others groups by address what is not a spelling of itself: the
//     spellings another spelling may share an address with (upper case,
//     padded, IPv4-mapped) and, through the session address indexes, the
//     sessions that need their enrichment JSON, a NULL source_ip or a blank
//     spelling (rare, found in spellings), per session. On a database this
//     tool keeps, that is a small share of the sessions;
//   - addresses, on PostgreSQL, joins the spellings that are their own
//     address with others on the address (a FULL JOIN: either side may
//     lack it) and folds the two sides' figures (pgAddresses). Grouping
//     every spelling again instead cost a 10M-session run 2.4 s. SQLite
//     does just that: others takes every spelling there.
//
// spellings is read three times and therefore materialised. The OFFSET 0
// fence in others stops both engines from pushing the empty-address test
// into the UNION ALL arms, where it would evaluate SessionIP (and parse the
// JSON) a second time per row.
//
// The LEFT JOIN keeps addresses absent from ip_inventory; both "absent" and
// "never enriched" show up as a NULL enrichment_updated_at there, so one
// IS NULL test covers both; a NULL ip_address tells them apart
// (pipeline.Record.NotInInventory). unfilled marks an address that some
// session with a NULL source_ip names in its JSON; the others get
// pipeline.Record.SessionIPsFilled. last_seen ties are broken by address so
// that LIMIT picks a deterministic set. COUNT(*) OVER () is computed before
// the LIMIT; Run hands it to Total.
func candidatesSQL(d store.Dialect) string {
	p1, p2, fence := "?", "?", "LIMIT -1 OFFSET 0"
	sessionIP := store.SessionIP(d, "s")
	blank := "s.source_ip IN (SELECT source_ip FROM spellings WHERE ip = '')"
	// SQLite has no hash join: its FULL JOIN of 1M spellings with others
	// was a nested loop (1M sessions: 281 s instead of 6.7 s), so there
	// others takes every spelling and is the addresses.
	regrouped, addresses := "TRUE", "SELECT ip, first_seen, last_seen, CAST(session_count AS BIGINT) AS session_count, unfilled FROM others"
	anyUnfilled := "MAX(unfilled)"
	if d == store.Postgres {
		p1, p2, fence = "$1", "$2", "OFFSET 0"
		regrouped, addresses = "ip <> source_ip", pgAddresses
		anyUnfilled = "bool_or(unfilled)"
		// The function of migration 6 is SessionIP declared PARALLEL SAFE:
		// unlike the inline expression (whose JSON subquery keeps it in the
		// leader), it lets parallel workers share the JSON parsing
		// (10M sessions: 52 s -> 44 s on a loaded machine).
		sessionIP = "cowrie_enrich_session_ip(s.source_ip, s.enrichment::json)"
		// An array, unlike IN (subquery), lets PostgreSQL OR the two index
		// scans (idx_session_missing_ip, idx_session_source_ip) in a bitmap.
		blank = "s.source_ip = ANY (ARRAY(SELECT source_ip FROM spellings WHERE ip = ''))"
	}
	return `WITH spellings AS MATERIALIZED (
  SELECT source_ip, ` + store.SpellingIP(d, "source_ip") + ` AS ip,
         MIN(first_event_at) AS first_seen, MAX(last_event_at) AS last_seen, COUNT(*) AS session_count
  FROM session_summaries
  WHERE source_ip IS NOT NULL
  GROUP BY source_ip
  ORDER BY source_ip
), others AS (
  SELECT ip, MIN(first_seen) AS first_seen, MAX(last_seen) AS last_seen, SUM(session_count) AS session_count,
         ` + anyUnfilled + ` AS unfilled
  FROM (
    SELECT ip, first_seen, last_seen, session_count, FALSE AS unfilled
    FROM spellings
    WHERE ` + regrouped + `
    UNION ALL
    SELECT ` + sessionIP + `, s.first_event_at, s.last_event_at, 1, s.source_ip IS NULL
    FROM session_summaries AS s
    WHERE s.source_ip IS NULL OR ` + blank + `
    ` + fence + `
  ) AS o
  WHERE ip <> ''
  GROUP BY ip
), addresses AS (
  ` + addresses + `
)
SELECT a.ip, a.first_seen, a.last_seen, a.session_count, i.ip_address IS NULL AS absent,
       a.unfilled, COUNT(*) OVER () AS candidates
FROM addresses AS a
LEFT JOIN ip_inventory AS i ON i.ip_address = a.ip
WHERE i.enrichment_updated_at IS NULL OR i.enrichment_updated_at < ` + p1 + `
ORDER BY a.last_seen DESC NULLS LAST, a.ip
LIMIT ` + p2
}

// pgAddresses folds the spellings that are their own address (c) with
// others on the address; a side without the address counts no sessions and
// its NULL times give way to the other side's.
const pgAddresses = `SELECT COALESCE(c.ip, o.ip) AS ip,
         CASE WHEN c.first_seen IS NULL OR o.first_seen < c.first_seen THEN o.first_seen ELSE c.first_seen END AS first_seen,
         CASE WHEN c.last_seen IS NULL OR o.last_seen > c.last_seen THEN o.last_seen ELSE c.last_seen END AS last_seen,
         CAST(COALESCE(c.session_count, 0) + COALESCE(o.session_count, 0) AS BIGINT) AS session_count,
         COALESCE(o.unfilled, FALSE) AS unfilled
  FROM (SELECT ip, first_seen, last_seen, session_count FROM spellings WHERE ip = source_ip AND ip <> '') AS c
  FULL JOIN others AS o ON o.ip = c.ip`

// args returns the query's arguments in the dialect's types: the cut-off as
// timestamptz on Postgres and as store.FormatTime text on SQLite (where
// fixed-width text order is time order); no limit is NULL on Postgres and
// -1 on SQLite.
func (s *Source) args() []any {
	switch s.db.Dialect {
	case store.Postgres:
		var limit any
		if s.limit > 0 {
			limit = s.limit
		}
		return []any{s.cutoff, limit}
	default:
		limit := -1
		if s.limit > 0 {
			limit = s.limit
		}
		return []any{store.FormatTime(s.cutoff), limit}
	}
}

// Total returns the number of addresses Run will emit. The count rides on
// the first row of Run's own query, so the progress bar costs no second
// pass over session_summaries: Total waits until Run has read that row (or
// found no candidates), returns Run's error if Run fails before, and
// returns ctx's error if ctx ends first, as it does when Run is never
// called. It may be called before, during or after Run.
func (s *Source) Total(ctx context.Context) (int64, error) {
	return s.total.wait(ctx)
}

// pgSettings holds the planner and memory settings of Run's transaction on
// PostgreSQL (set_config with is_local, i.e. SET LOCAL), measured on 10M
// sessions over 1M addresses (see BenchmarkStaleIPs10MIntegration):
//
//   - work_mem 128MB keeps the hash aggregates of about 1M addresses in
//     memory (with the default 4MB they spill to disk in dozens of
//     batches); a larger database spills gracefully instead;
//   - jit off: compiling the query took seconds and saved nothing, as the
//     time goes to hashing and JSON parsing;
//   - enable_nestloop off: the planner cannot estimate the number of
//     canonical addresses (it assumes 200) and would otherwise probe
//     ip_inventory once per address instead of joining in one pass;
//   - enable_sort off: with work_mem at 128MB the planner costs hashing
//     the 10M sessions into 1M spellings and sorting those below reading
//     idx_session_ip_activity in order, and picks it once the table is
//     vacuumed: 5.2 s for spellings instead of 2.0 s (the whole query
//     7.0 s instead of 3.9 s). Without sorting, the index is the only
//     way to the spellings' order. The sorts nothing can avoid (the
//     final ORDER BY) still run.
const pgSettings = `SELECT set_config('work_mem', '128MB', true), set_config('jit', 'off', true),
       set_config('enable_nestloop', 'off', true), set_config('enable_sort', 'off', true)`

// Run streams the candidates to emit, one record per address, and returns
// emit's error as soon as it returns one.
func (s *Source) Run(ctx context.Context, emit func(*pipeline.Record) error) error {
	s.env.Logger.Info("selecting stale addresses", "cutoff", s.cutoff, "limit", s.limit)
	err := s.run(ctx, emit)
	if err != nil {
		s.total.fail(err)
	}
	return err
}

func (s *Source) run(ctx context.Context, emit func(*pipeline.Record) error) error {
	var rows cursor
	var read func(cursor) (*pipeline.Record, int64, error)
	switch s.db.Dialect {
	case store.Postgres:
		held, err := s.declare(ctx)
		if err != nil {
			return err
		}
		defer held.close()
		rows, read = held, readPostgres
	default:
		r, err := s.db.SQL.QueryContext(ctx, candidatesSQL(store.SQLite), s.args()...)
		if err != nil {
			return fmt.Errorf("stale_ips: query candidates: %w", err)
		}
		defer r.Close()
		rows, read = r, s.readSQLite
	}
	var n int64
	for rows.Next() {
		// Rows already buffered from the database would otherwise keep
		// flowing after cancellation; stop at the next row instead.
		if err := ctx.Err(); err != nil {
			return err
		}
		r, candidates, err := read(rows)
		if err != nil {
			return fmt.Errorf("stale_ips: read candidate: %w", err)
		}
		if n == 0 {
			s.total.set(s.emitted(candidates))
		}
		if err := emit(r); err != nil {
			return err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("stale_ips: read candidates: %w", err)
	}
	if n == 0 {
		s.total.set(0)
	}
	s.env.Logger.Info("stale addresses emitted", "count", n)
	return nil
}

// heldCursorName names the cursor Run reads the candidates from.
const heldCursorName = "cowrie_enrich_stale_ips"

// fetchSize is how many candidates one FETCH returns.
const fetchSize = 5000

// declare runs the candidate query into a cursor WITH HOLD and commits.
// Reading the query's rows inside its transaction kept one snapshot open
// for the whole run, and while it was open PostgreSQL could clean up no
// row version the run made obsolete: each batch rewrites the ASN rows it
// touches, and the foreign-key check of every inserted address walked
// ever longer chains of dead versions (a 10M-session run spent twice the
// reference statement's time per row in its inserts). A held cursor is
// computed at commit and kept by the server (in memory up to work_mem,
// then in a temporary file), so the run holds no snapshot; Run then
// fetches it a page at a time on the same connection.
func (s *Source) declare(ctx context.Context) (*heldCursor, error) {
	conn, err := s.db.Pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("stale_ips: connect: %w", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		conn.Release()
		return nil, fmt.Errorf("stale_ips: begin: %w", err)
	}
	// The settings are the transaction's, so they also apply to the
	// query's run at commit; ending it drops them.
	_, err = tx.Exec(ctx, pgSettings)
	if err == nil {
		_, err = tx.Exec(ctx, "DECLARE "+heldCursorName+" NO SCROLL CURSOR WITH HOLD FOR "+candidatesSQL(store.Postgres), s.args()...)
	}
	if err == nil {
		err = tx.Commit(ctx)
	}
	if err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		conn.Release()
		return nil, fmt.Errorf("stale_ips: query candidates: %w", err)
	}
	return &heldCursor{ctx: ctx, conn: conn}, nil
}

// heldCursor reads the held cursor a page at a time; only a page is in
// memory. It is a cursor (Next, Scan, Err).
type heldCursor struct {
	ctx  context.Context
	conn *pgxpool.Conn
	page pgx.Rows
	read int // rows read of the current page
	err  error
}

func (c *heldCursor) Next() bool {
	for c.err == nil {
		if c.page != nil {
			if c.page.Next() {
				c.read++
				return true
			}
			c.page.Close()
			if c.err = c.page.Err(); c.err != nil || c.read == 0 {
				return false // an empty page: the cursor is done
			}
		}
		c.read = 0
		c.page, c.err = c.conn.Query(c.ctx, "FETCH "+strconv.Itoa(fetchSize)+" FROM "+heldCursorName)
	}
	return false
}

func (c *heldCursor) Scan(dest ...any) error { return c.page.Scan(dest...) }

func (c *heldCursor) Err() error { return c.err }

// close drops the cursor and returns the connection to the pool; a
// connection on which the cursor could not be closed (a cancelled or
// broken one) is closed instead, which drops the cursor with it.
func (c *heldCursor) close() {
	if c.page != nil {
		c.page.Close()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), 5*time.Second)
	defer cancel()
	if _, err := c.conn.Exec(ctx, "CLOSE "+heldCursorName); err != nil {
		_ = c.conn.Hijack().Close(ctx)
		return
	}
	c.conn.Release()
}

// emitted returns how many of the candidates Run emits under the limit.
func (s *Source) emitted(candidates int64) int64 {
	if s.limit > 0 {
		return min(candidates, int64(s.limit))
	}
	return candidates
}

// tally hands the candidate count from Run to Total.
type tally struct {
	mu      sync.Mutex
	n       int64
	err     error
	known   bool
	settled chan struct{} // closed once a count or an error is in
}

func newTally() *tally { return &tally{settled: make(chan struct{})} }

// set records the count of a Run that reached its first row (or found none).
func (t *tally) set(n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n, t.err, t.known = n, nil, true
	t.settle()
}

// fail records why a Run ended; it is kept only while no Run has counted.
func (t *tally) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.known {
		return
	}
	t.err = fmt.Errorf("stale_ips: count candidates: %w", err)
	t.settle()
}

func (t *tally) settle() {
	select {
	case <-t.settled:
	default:
		close(t.settled)
	}
}

func (t *tally) wait(ctx context.Context) (int64, error) {
	select {
	case <-t.settled:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n, t.err
}

// cursor is what pgx.Rows and *sql.Rows have in common.
type cursor interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// readPostgres reads a candidate and the number of candidates.
func readPostgres(rows cursor) (*pipeline.Record, int64, error) {
	var ip string
	var first, last *time.Time
	var count, candidates int64
	var absent, unfilled bool
	if err := rows.Scan(&ip, &first, &last, &count, &absent, &unfilled, &candidates); err != nil {
		return nil, 0, err
	}
	r := pipeline.NewRecord(ip)
	r.Sessions, r.NotInInventory, r.SessionIPsFilled = count, absent, !unfilled
	if first != nil {
		r.FirstSeen = first.UTC()
	}
	if last != nil {
		r.LastSeen = last.UTC()
	}
	return r, candidates, nil
}

// readSQLite reads a candidate whose timestamps are text (see
// store.TimeLayout) and the number of candidates.
func (s *Source) readSQLite(rows cursor) (*pipeline.Record, int64, error) {
	var ip string
	var first, last sql.NullString
	var count, candidates int64
	var absent, unfilled bool
	if err := rows.Scan(&ip, &first, &last, &count, &absent, &unfilled, &candidates); err != nil {
		return nil, 0, err
	}
	r := pipeline.NewRecord(ip)
	r.Sessions, r.NotInInventory, r.SessionIPsFilled = count, absent, !unfilled
	r.FirstSeen = s.parseTime(ip, first)
	r.LastSeen = s.parseTime(ip, last)
	return r, candidates, nil
}

// parseTime reads a SQLite timestamp. One in a layout ParseTime does not
// know leaves the zero time ("unknown"), like a NULL: the address is still
// enriched, and the sink keeps what the inventory already had.
func (s *Source) parseTime(ip string, v sql.NullString) time.Time {
	if !v.Valid || strings.TrimSpace(v.String) == "" {
		return time.Time{}
	}
	t, err := store.ParseTime(v.String)
	if err != nil {
		s.env.Logger.Debug("unreadable session timestamp", "ip", ip, "err", err)
		return time.Time{}
	}
	return t
}
