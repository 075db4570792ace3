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
// JSON), stale addresses only, most recently active first; on SQLite, also
// the number of candidates before the limit (PostgreSQL's is counted on the
// held cursor, see declare). Placeholders: the cut-off, then the limit.
//
// store.SessionIP is costly per row (string functions, and JSON parsing
// where source_ip is NULL), so it is never evaluated on every session:
// sessions that have a source_ip are grouped on the raw column first, as
// cheaply as a plain GROUP BY source_ip (10M sessions fold into about as
// many rows as there are addresses), and a spelling's address is worked
// out once (store.SpellingIP). Only the sessions with a NULL or blank
// source_ip need their JSON, one by one; on a database this tool keeps,
// those are a small share. The LEFT JOIN keeps addresses absent from
// ip_inventory; both "absent" and "never enriched" show up as a NULL
// enrichment_updated_at there, so one IS NULL test covers both; a NULL
// ip_address tells them apart (pipeline.Record.NotInInventory). unfilled
// marks an address that some session with a NULL source_ip names in its
// JSON; the others get pipeline.Record.SessionIPsFilled. last_seen ties
// are broken by address so that LIMIT picks a deterministic set.
func candidatesSQL(d store.Dialect) string {
	if d == store.Postgres {
		return pgCandidatesSQL()
	}
	return sqliteCandidatesSQL()
}

// jsonSessions selects, from the sessions that match where, each one's
// address (store.SessionIP), activity, a count of 1 and whether its
// source_ip is NULL, in the shape of a grouped spelling; sessionIP is
// SessionIP for the session alias s in the dialect's SQL.
func jsonSessions(sessionIP, where string) string {
	return `SELECT ` + sessionIP + `, s.first_event_at, s.last_event_at, 1, s.source_ip IS NULL
    FROM session_summaries AS s
    WHERE ` + where
}

// byAddress groups rows (ip, first_seen, last_seen, session_count,
// unfilled) by address, leaving out the empty one; anyUnfilled is the
// dialect's aggregate OR. The OFFSET fence stops both engines from pushing
// the empty-address test into the UNION ALL arms of rows, where it would
// evaluate SessionIP (and parse the JSON) a second time per row.
func byAddress(rows, fence, anyUnfilled string) string {
	return `SELECT ip, MIN(first_seen) AS first_seen, MAX(last_seen) AS last_seen, SUM(session_count) AS session_count,
         ` + anyUnfilled + ` AS unfilled
  FROM (
    ` + rows + `
    ` + fence + `
  ) AS o
  WHERE ip <> ''
  GROUP BY ip`
}

// sqliteCandidatesSQL groups every spelling again by address. SQLite has no
// hash join: the FULL JOIN PostgreSQL's query uses to fold the ordinary
// spellings with the others was a nested loop there (1M sessions: 281 s
// instead of 6.7 s). spellings is read twice and therefore materialised.
func sqliteCandidatesSQL() string {
	blank := "s.source_ip IN (SELECT source_ip FROM spellings WHERE ip = '')"
	rows := `SELECT ip, first_seen, last_seen, session_count, FALSE AS unfilled
    FROM spellings
    UNION ALL
    ` + jsonSessions(store.SessionIP(store.SQLite, "s"), "s.source_ip IS NULL OR "+blank)
	return `WITH spellings AS MATERIALIZED (
  SELECT source_ip, ` + store.SpellingIP(store.SQLite, "source_ip") + ` AS ip,
         MIN(first_event_at) AS first_seen, MAX(last_event_at) AS last_seen, COUNT(*) AS session_count
  FROM session_summaries
  WHERE source_ip IS NOT NULL
  GROUP BY source_ip
), addresses AS (
  ` + byAddress(rows, "LIMIT -1 OFFSET 0", "MAX(unfilled)") + `
)
SELECT a.ip, a.first_seen, a.last_seen, CAST(a.session_count AS BIGINT), i.ip_address IS NULL AS absent,
       a.unfilled, COUNT(*) OVER () AS candidates
FROM addresses AS a
LEFT JOIN ip_inventory AS i ON i.ip_address = a.ip
WHERE i.enrichment_updated_at IS NULL OR i.enrichment_updated_at < ?
ORDER BY a.last_seen DESC NULLS LAST, a.ip
LIMIT ?`
}

// pgCandidatesSQL splits the spellings in two (store.OddSpelling):
//
//   - ordinary spellings, almost all of them, are their own address. Their
//     sessions are grouped on the raw column by reading
//     idx_session_ip_activity in order (enable_sort off, pgSettings), which
//     aggregates without hashing and without reading the session rows, and
//     the groups come out in the order of ip_inventory's index, so one
//     merge join finds their inventory rows: the plan of the plain
//     candidate query, plus the odd-spelling test per spelling. The OFFSET
//     fence keeps that test above the grouping, once per spelling rather
//     than once per session;
//   - odd spellings, read index-only from idx_session_odd_ip and grouped
//     per spelling, and the sessions that need their JSON (a NULL source_ip
//     found through idx_session_missing_ip, or a blank spelling) are
//     grouped by address (others) and probe ip_inventory on their own. An
//     array, unlike IN (subquery), lets PostgreSQL OR the two index scans
//     (idx_session_missing_ip, idx_session_source_ip) in a bitmap.
//
// An address may have sessions on both sides; both sides see the same
// inventory row, so each keeps its stale addresses and a FULL JOIN on the
// address folds the two sides' figures (a side without the address counts
// no sessions, and its NULL times give way to the other side's). Grouping
// every spelling again by address instead, as SQLite does, cost a
// 10M-session run 2.4 s.
//
// The function of migration 6 is SessionIP declared PARALLEL SAFE: unlike
// the inline expression (whose JSON subquery keeps it in the leader), it
// lets parallel workers share the JSON parsing where a plan has them.
func pgCandidatesSQL() string {
	odd := store.OddSpelling("source_ip")
	rows := `SELECT ip, first_seen, last_seen, session_count, FALSE AS unfilled
    FROM odd
    UNION ALL
    ` + jsonSessions("cowrie_enrich_session_ip(s.source_ip, s.enrichment::json)",
		"s.source_ip IS NULL OR s.source_ip = ANY (ARRAY(SELECT source_ip FROM odd WHERE ip = ''))")
	return `WITH odd AS MATERIALIZED (
  SELECT source_ip, ` + store.SpellingIP(store.Postgres, "source_ip") + ` AS ip,
         MIN(first_event_at) AS first_seen, MAX(last_event_at) AS last_seen, COUNT(*) AS session_count
  FROM session_summaries
  WHERE ` + odd + `
  GROUP BY source_ip
), others AS (
  ` + byAddress(rows, "OFFSET 0", "bool_or(unfilled)") + `
), stale_others AS (
  SELECT o.ip, o.first_seen, o.last_seen, o.session_count, o.unfilled, i.ip_address IS NULL AS absent
  FROM others AS o
  LEFT JOIN ip_inventory AS i ON i.ip_address = o.ip
  WHERE i.enrichment_updated_at IS NULL OR i.enrichment_updated_at < $1
), stale_ordinary AS (
  SELECT g.source_ip AS ip, g.first_seen, g.last_seen, g.session_count, i.ip_address IS NULL AS absent
  FROM (SELECT source_ip, MIN(first_event_at) AS first_seen, MAX(last_event_at) AS last_seen, COUNT(*) AS session_count
        FROM session_summaries
        WHERE source_ip IS NOT NULL
        GROUP BY source_ip
        ORDER BY source_ip
        OFFSET 0) AS g
  LEFT JOIN ip_inventory AS i ON i.ip_address = g.source_ip
  WHERE NOT ` + store.OddSpelling("g.source_ip") + `
    AND (i.enrichment_updated_at IS NULL OR i.enrichment_updated_at < $1)
)
SELECT * FROM (
  SELECT CAST(COALESCE(c.ip, o.ip) AS TEXT) AS ip,
         CASE WHEN c.first_seen IS NULL OR o.first_seen < c.first_seen THEN o.first_seen ELSE c.first_seen END AS first_seen,
         CASE WHEN c.last_seen IS NULL OR o.last_seen > c.last_seen THEN o.last_seen ELSE c.last_seen END AS last_seen,
         CAST(COALESCE(c.session_count, 0) + COALESCE(o.session_count, 0) AS BIGINT) AS session_count,
         COALESCE(c.absent, o.absent) AS absent, COALESCE(o.unfilled, FALSE) AS unfilled
  FROM stale_ordinary AS c
  FULL JOIN stale_others AS o ON o.ip = c.ip
) AS a
ORDER BY a.last_seen DESC NULLS LAST, a.ip COLLATE "C"
LIMIT $2`
}

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
//   - work_mem 128MB keeps the final sort of about 1M addresses, and the
//     grouping of as many JSON-only ones on an upstream database, in
//     memory (with the default 4MB they spill to disk in dozens of
//     batches); a larger database spills gracefully instead;
//   - jit off: compiling the query took seconds and saved nothing, as the
//     time goes to hashing and JSON parsing;
//   - enable_nestloop off: the planner cannot estimate how many addresses
//     the odd spellings and JSON-only sessions give (it assumes 200), nor
//     how many spellings are ordinary (it assumes one in 200), and would
//     otherwise probe ip_inventory once per address instead of joining in
//     one pass;
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
	var read func(cursor) (*pipeline.Record, error)
	switch s.db.Dialect {
	case store.Postgres:
		held, candidates, err := s.declare(ctx)
		if err != nil {
			return err
		}
		defer held.close()
		s.total.set(candidates)
		rows, read = held, readPostgres
	default:
		r, err := s.db.SQL.QueryContext(ctx, candidatesSQL(store.SQLite), s.args()...)
		if err != nil {
			return fmt.Errorf("stale_ips: query candidates: %w", err)
		}
		defer r.Close()
		counted := false
		rows, read = r, func(c cursor) (*pipeline.Record, error) {
			rec, candidates, err := s.readSQLite(c)
			if err == nil && !counted {
				s.total.set(s.emitted(candidates))
				counted = true
			}
			return rec, err
		}
	}
	var n int64
	for rows.Next() {
		// Rows already buffered from the database would otherwise keep
		// flowing after cancellation; stop at the next row instead.
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := read(rows)
		if err != nil {
			return fmt.Errorf("stale_ips: read candidate: %w", err)
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
//
// declare also returns the number of candidates: it moves the cursor over
// the stored rows and back (hence SCROLL), which costs a fraction of what
// counting them in the query did (COUNT(*) OVER () kept a second copy of
// every row: 0.5 s of 9 s on 10M sessions).
func (s *Source) declare(ctx context.Context) (*heldCursor, int64, error) {
	conn, err := s.db.Pool.Acquire(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("stale_ips: connect: %w", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		conn.Release()
		return nil, 0, fmt.Errorf("stale_ips: begin: %w", err)
	}
	// The settings are the transaction's, so they also apply to the
	// query's run at commit; ending it drops them.
	_, err = tx.Exec(ctx, pgSettings)
	if err == nil {
		_, err = tx.Exec(ctx, "DECLARE "+heldCursorName+" SCROLL CURSOR WITH HOLD FOR "+candidatesSQL(store.Postgres), s.args()...)
	}
	if err == nil {
		err = tx.Commit(ctx)
	}
	if err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		conn.Release()
		return nil, 0, fmt.Errorf("stale_ips: query candidates: %w", err)
	}
	held := &heldCursor{ctx: ctx, conn: conn}
	moved, err := conn.Exec(ctx, "MOVE FORWARD ALL IN "+heldCursorName)
	if err == nil {
		_, err = conn.Exec(ctx, "MOVE ABSOLUTE 0 IN "+heldCursorName)
	}
	if err != nil {
		held.close()
		return nil, 0, fmt.Errorf("stale_ips: count candidates: %w", err)
	}
	return held, moved.RowsAffected(), nil
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

// readPostgres reads a candidate.
func readPostgres(rows cursor) (*pipeline.Record, error) {
	var ip string
	var first, last *time.Time
	var count int64
	var absent, unfilled bool
	if err := rows.Scan(&ip, &first, &last, &count, &absent, &unfilled); err != nil {
		return nil, err
	}
	r := pipeline.NewRecord(ip)
	r.Sessions, r.NotInInventory, r.SessionIPsFilled = count, absent, !unfilled
	if first != nil {
		r.FirstSeen = first.UTC()
	}
	if last != nil {
		r.LastSeen = last.UTC()
	}
	return r, nil
}

// readSQLite reads a candidate whose timestamps are text (see
// store.TimeLayout) and the number of candidates, which every row carries.
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
