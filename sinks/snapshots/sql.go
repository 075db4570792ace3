package snapshots

import (
	"strconv"
	"strings"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// setClause is the SET list of every snapshot write (session alias s,
// inventory alias i): each column keeps a value already written.
func setClause(d store.Dialect) string {
	country := `CASE WHEN i.geo_country ~ '^[A-Z]{2}$' AND i.geo_country <> 'XX' THEN i.geo_country END`
	ipType := `CASE WHEN i.is_bogon THEN 'bogon' ELSE (i.enrichment::jsonb)->'ip_classification'->>'ip_type' END`
	if d == store.SQLite {
		country = `CASE WHEN i.geo_country GLOB '[A-Z][A-Z]' AND i.geo_country <> 'XX' THEN i.geo_country END`
		ipType = `CASE WHEN i.is_bogon THEN 'bogon' WHEN json_valid(i.enrichment) THEN json_extract(i.enrichment, '$.ip_classification.ip_type') END`
	}
	return `snapshot_asn = COALESCE(s.snapshot_asn, i.current_asn),
    snapshot_country = COALESCE(s.snapshot_country, ` + country + `),
    snapshot_ip_type = COALESCE(s.snapshot_ip_type, ` + ipType + `),
    source_ip = COALESCE(s.source_ip, i.ip_address),
    enrichment_at = i.enrichment_updated_at`
}

// sessionIP is the address of session s: on PostgreSQL the indexed SQL
// function of migration 6, elsewhere the expression itself.
func sessionIP(d store.Dialect) string {
	if d == store.Postgres {
		return "cowrie_enrich_session_ip(s.source_ip, s.enrichment::json)"
	}
	return store.SessionIP(d, "s")
}

// joinCond joins session s to the enriched inventory row i of its address.
func joinCond(d store.Dialect) string {
	return "i.ip_address = " + sessionIP(d) + " AND i.enrichment_updated_at IS NOT NULL"
}

// Window is a closed range of sessions by first_event_at: Since <= t <
// Until. A zero bound is open; with both zero every session qualifies,
// including those without a first_event_at.
type Window struct {
	Since, Until time.Time
}

// Where restricts sessions (alias s) to w, numbering its placeholders from
// n on ($n on PostgreSQL, ?n on SQLite); it returns the condition (empty or
// starting with " AND") and its arguments in the dialect's timestamp form.
func (w Window) Where(d store.Dialect, n int) (string, []any) {
	var b strings.Builder
	var args []any
	for _, bound := range []struct {
		t  time.Time
		op string
	}{{w.Since, ">="}, {w.Until, "<"}} {
		if bound.t.IsZero() {
			continue
		}
		p := "?" + strconv.Itoa(n)
		if d == store.Postgres {
			p = "$" + strconv.Itoa(n)
			args = append(args, bound.t)
		} else {
			args = append(args, store.FormatTime(bound.t))
		}
		n++
		b.WriteString(" AND s.first_event_at " + bound.op + " " + p)
	}
	return b.String(), args
}

// FillSQL returns the statement that fills the empty snapshots of the
// sessions of a list of addresses from ip_inventory, first writer wins: on
// PostgreSQL the addresses are $1 (text[]), on SQLite ?1 (a JSON array).
// The inventory sink runs it in the transaction that writes those
// addresses, so a crash cannot leave their sessions behind.
//
// On PostgreSQL each address's sessions are found by index (the raw
// source_ip, or the address function for sessions without one) behind an
// OFFSET 0 fence, and the statement must run after NestedLoopsOnly: see
// there.
func FillSQL(d store.Dialect) string {
	if d == store.Postgres {
		return `UPDATE session_summaries AS s SET ` + setClause(store.Postgres) + `
FROM unnest($1::text[]) AS b(ip)
CROSS JOIN LATERAL (
  SELECT * FROM (
    SELECT t.session_id FROM session_summaries AS t WHERE t.source_ip = b.ip AND t.enrichment_at IS NULL
    UNION ALL
    SELECT t.session_id FROM session_summaries AS t
    WHERE t.source_ip IS NULL AND cowrie_enrich_session_ip(t.source_ip, t.enrichment::json) = b.ip AND t.enrichment_at IS NULL
  ) AS u OFFSET 0
) AS m
JOIN ip_inventory AS i ON i.ip_address = b.ip AND i.enrichment_updated_at IS NOT NULL
WHERE s.session_id = m.session_id AND s.enrichment_at IS NULL`
	}
	return `UPDATE session_summaries AS s SET ` + setClause(store.SQLite) + `
FROM ip_inventory AS i
WHERE s.enrichment_at IS NULL
  AND i.ip_address IN (SELECT value FROM json_each(?1))
  AND ` + joinCond(store.SQLite)
}

// NestedLoopsOnly is run (PostgreSQL only) in the transaction of a
// statement that updates the sessions of a batch of addresses, before it.
// The planner estimates sessions per address from a sampled n_distinct,
// which on a table of millions of sessions is off by a hundred times or
// more; it then hashes the whole session table for every batch (16 s per
// batch of 500 on 10M sessions instead of 0.25 s). A batch's sessions are
// always few, so index probes joined by nested loops are always right.
// The settings end with the transaction.
const NestedLoopsOnly = `SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`

// pgChunkSQL covers one chunk in one statement: the next $2 sessions after
// key $1 lacking snapshots, their update, and the checkpoint of job $3,
// all atomic. Window bounds are $4 and $5. It returns the chunk's last
// key (NULL when the window is exhausted), its size and the rows written.
func pgChunkSQL(w Window) (string, []any) {
	cond, args := w.Where(store.Postgres, 4)
	return `WITH chunk AS (
  SELECT s.session_id FROM session_summaries AS s
  WHERE s.session_id > $1 AND s.enrichment_at IS NULL` + cond + `
  ORDER BY s.session_id LIMIT $2
), upd AS (
  UPDATE session_summaries AS s SET ` + setClause(store.Postgres) + `
  FROM chunk AS c, ip_inventory AS i
  WHERE s.session_id = c.session_id AND s.enrichment_at IS NULL AND ` + joinCond(store.Postgres) + `
  RETURNING 1
), stats AS (
  SELECT max(session_id) AS last_key, count(*) AS scanned FROM chunk
), cp AS (
  UPDATE cowrie_enrich_checkpoints AS k
  SET last_key = st.last_key, scanned = k.scanned + st.scanned,
      written = k.written + (SELECT count(*) FROM upd), updated_at = now()
  FROM stats AS st
  WHERE k.job = $3 AND st.last_key IS NOT NULL
)
SELECT st.last_key, st.scanned, (SELECT count(*) FROM upd) FROM stats AS st`, args
}

// sqliteChunkBoundsSQL finds the next chunk: its last key and size.
func sqliteChunkBoundsSQL(w Window) (string, []any) {
	cond, args := w.Where(store.SQLite, 3)
	return `SELECT max(session_id), count(*) FROM (
  SELECT s.session_id FROM session_summaries AS s
  WHERE s.session_id > ?1 AND s.enrichment_at IS NULL` + cond + `
  ORDER BY s.session_id LIMIT ?2)`, args
}

// sqliteChunkSQL updates the sessions of the chunk (?1, ?2].
func sqliteChunkSQL(w Window) (string, []any) {
	cond, args := w.Where(store.SQLite, 3)
	return `UPDATE session_summaries AS s SET ` + setClause(store.SQLite) + `
FROM ip_inventory AS i
WHERE s.session_id > ?1 AND s.session_id <= ?2 AND s.enrichment_at IS NULL` + cond + `
  AND ` + joinCond(store.SQLite), args
}

const sqliteCheckpointSQL = `UPDATE cowrie_enrich_checkpoints
SET last_key = ?2, scanned = scanned + ?3, written = written + ?4, updated_at = ?5
WHERE job = ?1`

// countSQL counts the window's sessions lacking snapshots and, of those,
// the ones whose address is enriched in the inventory now.
func countSQL(d store.Dialect, w Window) (string, []any) {
	cond, args := w.Where(d, 1)
	return `SELECT count(*), count(i.ip_address) FROM session_summaries AS s
LEFT JOIN ip_inventory AS i ON ` + joinCond(d) + `
WHERE s.enrichment_at IS NULL` + cond, args
}
