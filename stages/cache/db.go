package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// database is the L2 tier: what the inventory already holds for an
// address (ip_inventory.enrichment.<source>), and enrichment_cache rows
// (service = source, cache_key = address) for answers the inventory cannot
// hold, such as "not found", or that came from the file tier.
type database struct {
	db *store.DB
}

// rawAnswer is an undecoded answer and, for enrichment_cache rows, the
// row's created_at, which dates an answer without cached_at.
type rawAnswer struct {
	value   []byte
	created time.Time
}

// answers maps address → source → the answers found for it.
type answers map[string]map[string][]rawAnswer

func (a answers) add(ip, source string, r rawAnswer) {
	m := a[ip]
	if m == nil {
		m = make(map[string][]rawAnswer, len(sources))
		a[ip] = m
	}
	m[source] = append(m[source], r)
}

// The queries take every address of a batch in one parameter: an array
// on PostgreSQL, a JSON array on SQLite (no limit on the number of
// addresses, one statement to prepare).
//
// On PostgreSQL each address is one index probe (a LATERAL per address),
// and the statements are planned for every batch (see pgArgs): a plan
// cached while ip_inventory was small, as at the start of a first run or
// after a truncate, scans the whole table for every batch, which made a
// run's cost grow with the square of its addresses.
const (
	pgInventory = `SELECT b.ip, (o.e->'maxmind')::text, (o.e->'cymru')::text, (o.e->'greynoise')::text
FROM (SELECT DISTINCT unnest($1::text[])) AS b(ip)
CROSS JOIN LATERAL (
    SELECT CASE WHEN jsonb_typeof(i.enrichment::jsonb) = 'object' THEN i.enrichment::jsonb END AS e
    FROM ip_inventory AS i WHERE i.ip_address = b.ip LIMIT 1) AS o`
	sqInventory = `SELECT ip_address,
  CASE WHEN json_valid(enrichment) THEN enrichment -> '$.maxmind' END,
  CASE WHEN json_valid(enrichment) THEN enrichment -> '$.cymru' END,
  CASE WHEN json_valid(enrichment) THEN enrichment -> '$.greynoise' END
FROM ip_inventory WHERE ip_address IN (SELECT value FROM json_each(?))`

	pgCacheRows = `SELECT c.service, c.cache_key, c.cache_value::text, c.created_at
FROM (SELECT DISTINCT unnest($1::text[])) AS b(ip)
CROSS JOIN unnest(ARRAY['maxmind', 'cymru', 'greynoise']) AS v(service)
CROSS JOIN LATERAL (
    SELECT e.service, e.cache_key, e.cache_value, e.created_at FROM enrichment_cache AS e
    WHERE e.service = v.service AND e.cache_key = b.ip) AS c`
	sqCacheRows = `SELECT service, cache_key, cache_value, created_at FROM enrichment_cache
WHERE service IN ('maxmind', 'cymru', 'greynoise') AND cache_key IN (SELECT value FROM json_each(?))`

	// A row is replaced only by a newer answer, so a back-fill from an old
	// file never overwrites what a provider said since.
	pgUpsert = `INSERT INTO enrichment_cache (service, cache_key, cache_value, created_at, expires_at)
SELECT s, k, v::jsonb, c, x FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[]) AS u(s, k, v, c, x)
ON CONFLICT (service, cache_key) DO UPDATE SET cache_value = excluded.cache_value,
  created_at = excluded.created_at, expires_at = excluded.expires_at
WHERE enrichment_cache.created_at <= excluded.created_at`
	sqUpsert = `INSERT INTO enrichment_cache (service, cache_key, cache_value, created_at, expires_at)
SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM json_each(?) WHERE true
ON CONFLICT (service, cache_key) DO UPDATE SET cache_value = excluded.cache_value,
  created_at = excluded.created_at, expires_at = excluded.expires_at
WHERE enrichment_cache.created_at <= excluded.created_at`
)

// ipsArgs returns the addresses as the dialect's single parameter, and
// on PostgreSQL asks pgx to have the statement planned for these values
// (an unnamed statement) rather than reuse a generic plan.
func (d *database) ipsArgs(ips []string) ([]any, error) {
	if d.db.Dialect == store.Postgres {
		return []any{pgx.QueryExecModeExec, ips}, nil
	}
	b, err := json.Marshal(ips)
	return []any{string(b)}, err
}

func (d *database) query(pg, sq string) string {
	if d.db.Dialect == store.Postgres {
		return pg
	}
	return sq
}

// inventory returns the answers ip_inventory holds for ips, in one query.
func (d *database) inventory(ctx context.Context, ips []string) (answers, error) {
	args, err := d.ipsArgs(ips)
	if err != nil {
		return nil, err
	}
	out := answers{}
	err = d.db.Query(ctx, d.query(pgInventory, sqInventory), args, func(scan func(...any) error) error {
		var ip string
		var vals [len(sources)]*string
		if err := scan(&ip, &vals[0], &vals[1], &vals[2]); err != nil {
			return err
		}
		for i, v := range vals {
			if v != nil {
				out.add(ip, sources[i], rawAnswer{value: []byte(*v)})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read ip_inventory: %w", err)
	}
	return out, nil
}

// cacheRows returns the enrichment_cache rows of ips, in one query.
func (d *database) cacheRows(ctx context.Context, ips []string) (answers, error) {
	args, err := d.ipsArgs(ips)
	if err != nil {
		return nil, err
	}
	out := answers{}
	err = d.db.Query(ctx, d.query(pgCacheRows, sqCacheRows), args, func(scan func(...any) error) error {
		var service, key, value string
		var created any
		if err := scan(&service, &key, &value, &created); err != nil {
			return err
		}
		out.add(key, service, rawAnswer{value: []byte(value), created: rowTime(created)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read enrichment_cache: %w", err)
	}
	return out, nil
}

// rowTime reads a timestamp column: time.Time from pgx (and from SQLite
// for DATETIME columns), text otherwise. An unreadable one is the zero
// time, which leaves the answer undated.
func rowTime(v any) time.Time {
	switch t := v.(type) {
	case time.Time:
		return t.UTC()
	case string:
		if p, err := store.ParseTime(t); err == nil {
			return p
		}
	case []byte:
		if p, err := store.ParseTime(string(t)); err == nil {
			return p
		}
	}
	return time.Time{}
}

// cacheRow is one enrichment_cache row to write.
type cacheRow struct {
	source, ip string
	value      []byte
	created    time.Time
	expires    time.Time
}

// upsert writes rows in one statement, keeping the newest answer per key.
func (d *database) upsert(ctx context.Context, rows []cacheRow) error {
	if len(rows) == 0 {
		return nil
	}
	newest := make(map[[2]string]int, len(rows))
	uniq := rows[:0:0]
	for _, r := range rows {
		k := [2]string{r.source, r.ip}
		if i, ok := newest[k]; ok {
			if r.created.After(uniq[i].created) {
				uniq[i] = r
			}
			continue
		}
		newest[k] = len(uniq)
		uniq = append(uniq, r)
	}
	if d.db.Dialect == store.Postgres {
		var s, k, v []string
		var c, x []time.Time
		for _, r := range uniq {
			s, k, v = append(s, r.source), append(k, r.ip), append(v, string(r.value))
			c, x = append(c, r.created), append(x, r.expires)
		}
		if _, err := d.db.Pool.Exec(ctx, pgUpsert, s, k, v, c, x); err != nil {
			return fmt.Errorf("write enrichment_cache: %w", err)
		}
		return nil
	}
	arr := make([][5]string, len(uniq))
	for i, r := range uniq {
		arr[i] = [5]string{r.source, r.ip, string(r.value), store.FormatTime(r.created), store.FormatTime(r.expires)}
	}
	b, err := json.Marshal(arr)
	if err != nil {
		return err
	}
	if _, err := d.db.SQL.ExecContext(ctx, sqUpsert, string(b)); err != nil {
		return fmt.Errorf("write enrichment_cache: %w", err)
	}
	return nil
}
