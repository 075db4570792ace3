package store

import "strings"

// SessionIP returns an SQL expression for the address of a session row
// (table alias a) in the dialect's SQL: source_ip where set, else upstream's
// canonical first-seen address from the session's enrichment JSON (the first
// key of enrichment.session, then enrichment.dshield.ip.number), which is
// where an upstream database keeps the address of a session whose IP is not
// yet in ip_inventory.
//
// The result is lightly canonicalised in SQL (trimmed, lower case, an
// IPv4-mapped IPv6 address unmapped) so that sessions of the usual spellings
// of one address group together; the validate stage does the full
// net/netip canonicalisation. Malformed JSON yields NULL, never an error.
func SessionIP(d Dialect, a string) string {
	return unmapped(lowerTrim(sessionAddress(d, a)))
}

// SessionIPQuery is SessionIP on PostgreSQL written as a query that works
// the address out once. SessionIP names it twice in its CASE and
// PostgreSQL evaluates both, parsing a NULL-source session's JSON twice as
// often; a subquery cannot stand in an index expression or a parallel
// plan, so this form is the body of the function behind
// idx_session_missing_ip (migrations), which both use.
func SessionIPQuery(a string) string {
	return "SELECT " + unmapped("v") + " FROM (SELECT " + lowerTrim(sessionAddress(Postgres, a)) + " AS v OFFSET 0) AS address"
}

// SpellingIP returns an SQL expression for the address of a source_ip
// spelling expr that is not blank: what SessionIP gives for a session
// with that source_ip, without the JSON fallbacks it cannot need. On
// PostgreSQL it lowers in the "C" collation, which folds only ASCII (all an
// address holds) at a third of the cost of a UTF-8 locale's LOWER.
func SpellingIP(d Dialect, expr string) string {
	t := "TRIM(" + expr + ")"
	if d == Postgres {
		t += ` COLLATE "C"`
	}
	return unmapped("LOWER(" + t + ")")
}

// OddSpelling returns a PostgreSQL condition on a source_ip spelling expr,
// true when the spelling may not be its own address: blank, not trimmed and
// lower case, or IPv4-mapped. Any other spelling is exactly the address
// SpellingIP gives, so the stale_ips source groups the sessions that have
// it by the raw column and works out addresses only for the odd ones. It
// is also the predicate of the partial index idx_session_odd_ip (see
// migrations), which PostgreSQL uses only for a query that repeats it.
// NULL is neither odd nor not: NULL in, NULL out.
func OddSpelling(expr string) string {
	return "(" + expr + " <> LOWER(TRIM(" + expr + `) COLLATE "C") OR ` + expr + " LIKE '::ffff:%' OR " + expr + " = '')"
}

// unmapped returns the address expr (lower case, trimmed) with an
// IPv4-mapped IPv6 address unmapped; it names expr twice.
func unmapped(expr string) string {
	return "CASE WHEN " + expr + " LIKE '::ffff:%.%.%.%' THEN SUBSTR(" + expr + ", 8) ELSE " + expr + " END"
}

// sessionAddress is the session's address as stored, before
// canonicalisation.
func sessionAddress(d Dialect, a string) string {
	var raw string
	switch d {
	case Postgres:
		raw = `COALESCE(NULLIF(TRIM(a.source_ip), ''),
  CASE WHEN json_typeof((a.enrichment::json)->'session') = 'object'
       THEN (SELECT k FROM json_object_keys((a.enrichment::json)->'session') AS k LIMIT 1) END,
  (a.enrichment::json)->'dshield'->'ip'->>'number')`
	default:
		raw = `COALESCE(NULLIF(TRIM(a.source_ip), ''),
  CASE WHEN json_valid(a.enrichment) AND json_type(a.enrichment, '$.session') = 'object'
       THEN (SELECT key FROM json_each(a.enrichment, '$.session') LIMIT 1) END,
  CASE WHEN json_valid(a.enrichment) THEN json_extract(a.enrichment, '$.dshield.ip.number') END)`
	}
	return strings.ReplaceAll(raw, "a.", a+".")
}

func lowerTrim(expr string) string { return "LOWER(TRIM(" + expr + "))" }
