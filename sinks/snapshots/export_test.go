package snapshots

import "github.com/cowrie-enrich/cowrie-enrich/store"

// ReferenceSQL is the benchmark's yardstick: the sweep's SET list and join
// as one UPDATE over every session lacking a snapshot.
func ReferenceSQL() string {
	return `UPDATE session_summaries AS s SET ` + setClause(store.Postgres) + `
FROM ip_inventory AS i
WHERE s.enrichment_at IS NULL AND ` + joinCond(store.Postgres)
}
