package inventory

import (
	"fmt"
	"strings"
)

// The row semantics are written once and shared by both dialects, so they
// cannot drift apart; only how values reach the statement differs (arrays
// on PostgreSQL, one execution per row on SQLite).

// asnOrgFill sets the organisation data of the asn_inventory row a
// (first writer wins, as upstream's _ensure_asn_inventory): each field
// only while it is empty, to the given expression of the new value.
func asnOrgFill(org, country, registry string) string {
	return `organization_name = COALESCE(NULLIF(a.organization_name, ''), ` + org + `),
    organization_country = COALESCE(NULLIF(a.organization_country, ''), ` + country + `),
    rir_registry = COALESCE(NULLIF(a.rir_registry, ''), ` + registry + `)`
}

// asnConflict, SQLite's ASN upsert, refreshes last_seen of an existing ASN
// row and fills its organisation data (asnOrgFill). The inserted counters
// are a change to add to the stored ones, so the row is written once per
// batch. (PostgreSQL records the changes instead: pgASNUpsert.)
var asnConflict = `ON CONFLICT (asn_number) DO UPDATE SET
    last_seen = excluded.last_seen,
    updated_at = excluded.updated_at,
    ` + asnOrgFill("excluded.organization_name", "excluded.organization_country", "excluded.rir_registry") + `,
    unique_ip_count = a.unique_ip_count + excluded.unique_ip_count,
    total_session_count = a.total_session_count + excluded.total_session_count`

// ipConflict updates an existing ip_inventory row (alias t). A record
// without sessions is inserted with session_count 0, so a positive
// excluded.session_count means the record knows its sessions and they are
// set exactly; otherwise the stored ones are kept. A NULL current_asn or
// enrichment_updated_at in the new values keeps the stored one, and so does
// an empty ip_types (emptyTypes, the dialect's empty array): only a record
// carrying a classification sets it. The generated columns are never named.
func ipConflict(enrichment, emptyTypes string) string {
	return fmt.Sprintf(`ON CONFLICT (ip_address) DO UPDATE SET
    current_asn = COALESCE(excluded.current_asn, t.current_asn),
    asn_last_verified = COALESCE(excluded.asn_last_verified, t.asn_last_verified),
    first_seen = CASE WHEN excluded.session_count > 0 THEN excluded.first_seen ELSE t.first_seen END,
    last_seen = CASE WHEN excluded.session_count > 0 THEN excluded.last_seen ELSE t.last_seen END,
    session_count = CASE WHEN excluded.session_count > 0 THEN excluded.session_count ELSE t.session_count END,
    enrichment = %s,
    enrichment_updated_at = COALESCE(excluded.enrichment_updated_at, t.enrichment_updated_at),
    ip_types = CASE WHEN excluded.ip_types = %s THEN t.ip_types ELSE excluded.ip_types END,
    updated_at = excluded.updated_at`, enrichment, emptyTypes)
}

// ipColumnNames are the ip_inventory columns the sink writes, in the
// order of the values of both dialects' statements and of the copy of new
// rows; ipColumns is the same list as SQL.
var (
	ipColumnNames = []string{"ip_address", "current_asn", "asn_last_verified", "first_seen", "last_seen", "session_count",
		"enrichment", "enrichment_updated_at", "created_at", "updated_at", "ip_types"}
	ipColumns = "(" + strings.Join(ipColumnNames, ", ") + ")"
)

const asnColumns = `(asn_number, organization_name, organization_country, rir_registry, first_seen, last_seen,
    unique_ip_count, total_session_count, enrichment, created_at, updated_at)`

// deadConflict keeps one dead letter per stage and raw value; a rerun
// refreshes its reason and which run saw it last.
const deadConflict = `ON CONFLICT (stage, ip_raw) DO UPDATE SET
    reason = excluded.reason,
    pipeline = excluded.pipeline,
    run_id = excluded.run_id,
    last_seen = excluded.last_seen`

const deadColumns = `(stage, ip_raw, reason, pipeline, run_id, first_seen, last_seen)`
