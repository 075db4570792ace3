package greynoise

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// quota is a daily lookup budget shared by every process using one API
// key. Days are UTC dates, YYYY-MM-DD.
type quota interface {
	// reserve takes up to n lookups of day's budget of limit, atomically,
	// and returns how many it took and how many remain after.
	reserve(ctx context.Context, day string, n, limit int64) (granted, remaining int64, err error)
	// exhaust marks day's budget spent, because GreyNoise said so.
	exhaust(ctx context.Context, day string, limit int64) error
	close() error
}

var (
	_ quota = (*redisQuota)(nil)
	_ quota = (*sqlQuota)(nil)
	_ quota = (*memQuota)(nil)
)

// keyID identifies a key's budget without revealing the key: the first
// twelve hex digits of its SHA-256.
func keyID(key secret) string {
	sum := sha256.Sum256([]byte(key.reveal()))
	return hex.EncodeToString(sum[:])[:12]
}

// redisTTL keeps a day's counter past the day's end in every time zone,
// then lets Redis drop it.
const redisTTL = 48 * time.Hour

// reserveScript takes min(n, limit-used) from the counter in one atomic
// step, so concurrent processes can never together exceed limit.
var reserveScript = redis.NewScript(`
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local n, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local g = math.min(n, limit - used)
if g > 0 then used = redis.call('INCRBY', KEYS[1], g) else g = 0 end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {g, limit - used}
`)

// exhaustScript raises the counter to limit.
var exhaustScript = redis.NewScript(`
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 0
`)

// redisQuota keeps the counter in cowrie:<name>:<day>, e.g.
// cowrie:greynoise:quota:3f2a…:2026-11-26.
type redisQuota struct {
	rdb    *redis.Client
	prefix string
}

// newRedisQuota builds the client without connecting; url was checked by
// Config.Validate.
func newRedisQuota(url string, key secret) (*redisQuota, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, errors.New("redis_url: not a redis:// or rediss:// URL")
	}
	return &redisQuota{rdb: redis.NewClient(opts), prefix: "cowrie:greynoise:quota:" + keyID(key) + ":"}, nil
}

// rateKey is the redis_rate key of the shared rate limit of key (stored
// by redis_rate as rate:cowrie:greynoise:<key id>).
func rateKey(key secret) string { return "cowrie:greynoise:" + keyID(key) }

func (q *redisQuota) reserve(ctx context.Context, day string, n, limit int64) (int64, int64, error) {
	v, err := reserveScript.Run(ctx, q.rdb, []string{q.prefix + day}, n, limit, int(redisTTL.Seconds())).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("reserve quota in redis: %w", err)
	}
	if len(v) != 2 {
		return 0, 0, fmt.Errorf("reserve quota in redis: unexpected reply %v", v)
	}
	return v[0], max(v[1], 0), nil
}

func (q *redisQuota) exhaust(ctx context.Context, day string, limit int64) error {
	if err := exhaustScript.Run(ctx, q.rdb, []string{q.prefix + day}, limit, int(redisTTL.Seconds())).Err(); err != nil {
		return fmt.Errorf("mark quota spent in redis: %w", err)
	}
	return nil
}

func (q *redisQuota) close() error { return q.rdb.Close() }

// sqlQuota keeps the counter in the cowrie_enrich_quota table (migration
// 0005) of the run's database.
type sqlQuota struct {
	db   *store.DB
	name string
}

func (q *sqlQuota) reserve(ctx context.Context, day string, n, limit int64) (int64, int64, error) {
	var g, rem int64
	var err error
	if q.db.Dialect == store.Postgres {
		g, rem, err = q.reservePostgres(ctx, day, n, limit)
	} else {
		g, rem, err = q.reserveSQLite(ctx, day, n, limit)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("reserve quota in cowrie_enrich_quota: %w", err)
	}
	return g, rem, nil
}

// reservePostgres relies on the conditional UPDATE alone: each one adds
// only what still fits, so it needs no transaction; when another process
// took the room first, it rereads what is left and asks for that.
func (q *sqlQuota) reservePostgres(ctx context.Context, day string, n, limit int64) (int64, int64, error) {
	if _, err := q.db.Pool.Exec(ctx, `INSERT INTO cowrie_enrich_quota (name, day, used) VALUES ($1, $2::date, 0) ON CONFLICT DO NOTHING`, q.name, day); err != nil {
		return 0, 0, err
	}
	want := n
	for want > 0 {
		var used int64
		err := q.db.Pool.QueryRow(ctx, `UPDATE cowrie_enrich_quota SET used = used + $3
			WHERE name = $1 AND day = $2::date AND used + $3 <= $4 RETURNING used`, q.name, day, want, limit).Scan(&used)
		if err == nil {
			return want, limit - used, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return 0, 0, err
		}
		if err := q.db.Pool.QueryRow(ctx, `SELECT used FROM cowrie_enrich_quota WHERE name = $1 AND day = $2::date`, q.name, day).Scan(&used); err != nil {
			return 0, 0, err
		}
		want = min(want, limit-used)
	}
	return 0, 0, nil
}

// reserveSQLite reads and updates in one immediate transaction (the
// store's connections begin with BEGIN IMMEDIATE), which holds SQLite's
// write lock throughout.
func (q *sqlQuota) reserveSQLite(ctx context.Context, day string, n, limit int64) (g, rem int64, err error) {
	err = q.sqliteTx(ctx, day, func(tx *sql.Tx, used int64) error {
		g = max(min(n, limit-used), 0)
		rem = max(limit-used-g, 0)
		if g == 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE cowrie_enrich_quota SET used = used + ? WHERE name = ? AND day = ?`, g, q.name, day)
		return err
	})
	return g, rem, err
}

// sqliteTx runs f on the current count of day in an immediate transaction.
func (q *sqlQuota) sqliteTx(ctx context.Context, day string, f func(tx *sql.Tx, used int64) error) error {
	tx, err := q.db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO cowrie_enrich_quota (name, day, used) VALUES (?, ?, 0)`, q.name, day); err != nil {
		return err
	}
	var used int64
	if err := tx.QueryRowContext(ctx, `SELECT used FROM cowrie_enrich_quota WHERE name = ? AND day = ?`, q.name, day).Scan(&used); err != nil {
		return err
	}
	if err := f(tx, used); err != nil {
		return err
	}
	return tx.Commit()
}

func (q *sqlQuota) exhaust(ctx context.Context, day string, limit int64) error {
	var err error
	if q.db.Dialect == store.Postgres {
		_, err = q.db.Pool.Exec(ctx, `INSERT INTO cowrie_enrich_quota (name, day, used) VALUES ($1, $2::date, $3)
			ON CONFLICT (name, day) DO UPDATE SET used = GREATEST(cowrie_enrich_quota.used, EXCLUDED.used)`, q.name, day, limit)
	} else {
		err = q.sqliteTx(ctx, day, func(tx *sql.Tx, _ int64) error {
			_, err := tx.ExecContext(ctx, `UPDATE cowrie_enrich_quota SET used = max(used, ?) WHERE name = ? AND day = ?`, limit, q.name, day)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("mark quota spent in cowrie_enrich_quota: %w", err)
	}
	return nil
}

func (q *sqlQuota) close() error { return nil }

// memQuota is the budget of a run without a database or Redis (tests,
// ip_list dry runs): it protects the quota within this process only.
type memQuota struct {
	mu   sync.Mutex
	used map[string]int64
}

func (q *memQuota) reserve(_ context.Context, day string, n, limit int64) (int64, int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.used == nil {
		q.used = map[string]int64{}
	}
	g := max(min(n, limit-q.used[day]), 0)
	q.used[day] += g
	return g, limit - q.used[day], nil
}

func (q *memQuota) exhaust(_ context.Context, day string, limit int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.used == nil {
		q.used = map[string]int64{}
	}
	q.used[day] = max(q.used[day], limit)
	return nil
}

func (q *memQuota) close() error { return nil }
