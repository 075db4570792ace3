package snapshots

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// Run counters the backfill reports through pipeline.Progress, for the
// status files and the command line.
const (
	CounterTotal   = "sessions_total"   // sessions lacking a snapshot when the sweep started (after the checkpoint)
	CounterScanned = "sessions_scanned" // sessions the sweep has covered
	CounterWritten = "sessions_written" // of those, sessions that got a snapshot
	CounterChunks  = "snapshot_chunks"  // chunks committed
)

// DefaultChunkSize is the number of sessions per chunk: large enough that
// per-statement overhead vanishes, small enough that a chunk commits in
// well under a second and an interrupted one costs little to redo.
const DefaultChunkSize = 10000

// MaxChunkSize bounds the chunk size.
const MaxChunkSize = 1_000_000

// progressEvery is how often a long sweep logs its progress.
const progressEvery = 10 * time.Second

// Options configure a Backfill.
type Options struct {
	Window    Window
	ChunkSize int
	// Resume continues after the checkpoint of the same job (window);
	// otherwise the sweep starts at the first session again (sessions
	// already written are still never rewritten).
	Resume bool
}

// Job returns the checkpoint key of a window: one checkpoint per window,
// so a resume with other bounds cannot skip sessions of its own window.
func (o Options) Job() string {
	bound := func(t time.Time) string {
		if t.IsZero() {
			return "*"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	return "backfill-sessions:" + bound(o.Window.Since) + ".." + bound(o.Window.Until)
}

// Result is what a sweep did.
type Result struct {
	Scanned, Written int64
	Chunks           int64
	LastKey          string
	Resumed          bool // continued after an existing checkpoint
}

// Backfill is the resumable snapshot sweep over a window of sessions.
type Backfill struct {
	db       *store.DB
	opts     Options
	log      *slog.Logger
	progress *pipeline.Progress
	now      func() time.Time
}

// NewBackfill returns a sweep over db. progress may be nil.
func NewBackfill(db *store.DB, opts Options, log *slog.Logger, progress *pipeline.Progress) (*Backfill, error) {
	if db == nil {
		return nil, ErrNoStore
	}
	if opts.ChunkSize == 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	if opts.ChunkSize < 1 || opts.ChunkSize > MaxChunkSize {
		return nil, fmt.Errorf("chunk size must be between 1 and %d, got %d", MaxChunkSize, opts.ChunkSize)
	}
	if !opts.Window.Since.IsZero() && !opts.Window.Until.IsZero() && !opts.Window.Since.Before(opts.Window.Until) {
		return nil, fmt.Errorf("%w: since %s is not before until %s", ErrWindow, opts.Window.Since, opts.Window.Until)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if progress == nil {
		progress = pipeline.NewProgress(time.Now())
	}
	return &Backfill{db: db, opts: opts, log: log, progress: progress, now: time.Now}, nil
}

// Run sweeps the window chunk by chunk until no session lacking a snapshot
// is left after the checkpoint, or ctx is done. Each chunk and its
// checkpoint commit together; on error or cancellation everything before
// the failing chunk is kept and a Resume run continues from there.
func (b *Backfill) Run(ctx context.Context) (Result, error) {
	var res Result
	var err error
	res.LastKey, res.Resumed, err = b.start(ctx)
	if err != nil {
		return res, fmt.Errorf("snapshots: start checkpoint: %w", err)
	}
	total, err := b.remaining(ctx, res.LastKey)
	if err != nil {
		return res, fmt.Errorf("snapshots: count sessions: %w", err)
	}
	b.progress.Set(CounterTotal, total)
	b.log.Info("snapshot backfill started", "job", b.opts.Job(), "sessions", total, "resumed", res.Resumed,
		"after", res.LastKey, "chunk_size", b.opts.ChunkSize)

	chunk, release, err := b.chunker(ctx)
	if err != nil {
		return res, fmt.Errorf("snapshots: %w", err)
	}
	defer release()
	started, lastLog := time.Now(), time.Now()
	for {
		last, scanned, written, err := chunk(ctx, res.LastKey)
		if err != nil {
			return res, fmt.Errorf("snapshots: chunk after %q: %w", res.LastKey, err)
		}
		if scanned == 0 {
			break
		}
		res.LastKey = last
		res.Scanned += scanned
		res.Written += written
		res.Chunks++
		b.progress.Add(CounterScanned, scanned)
		b.progress.Add(CounterWritten, written)
		b.progress.Add(CounterChunks, 1)
		b.log.Debug("chunk committed", "last_key", last, "scanned", scanned, "written", written)
		if time.Since(lastLog) >= progressEvery {
			lastLog = time.Now()
			b.logProgress(res, total, time.Since(started))
		}
	}
	if err := b.finish(ctx); err != nil {
		return res, fmt.Errorf("snapshots: finish checkpoint: %w", err)
	}
	b.log.Info("snapshot backfill finished", "scanned", res.Scanned, "written", res.Written,
		"without_inventory", res.Scanned-res.Written, "chunks", res.Chunks, "elapsed", time.Since(started).Round(time.Millisecond))
	return res, nil
}

func (b *Backfill) logProgress(res Result, total int64, elapsed time.Duration) {
	rate := float64(res.Scanned) / elapsed.Seconds()
	args := []any{"scanned", res.Scanned, "total", total, "written", res.Written,
		"sessions_per_second", strconv.FormatFloat(rate, 'f', 0, 64)}
	if rate > 0 && total > res.Scanned {
		args = append(args, "eta", (time.Duration(float64(total-res.Scanned)/rate) * time.Second).Round(time.Second))
	}
	b.log.Info("snapshot backfill progress", args...)
}

// start reads or resets the job's checkpoint and returns the key to
// continue after.
func (b *Backfill) start(ctx context.Context) (string, bool, error) {
	job, now := b.opts.Job(), b.now()
	if b.opts.Resume {
		var key string
		err := b.db.QueryRow(ctx, "SELECT last_key FROM cowrie_enrich_checkpoints WHERE job = ?", []any{job}, &key)
		switch {
		case err == nil:
			return key, true, b.db.Exec(ctx, "UPDATE cowrie_enrich_checkpoints SET done = false, updated_at = ? WHERE job = ?", now, job)
		case !errors.Is(err, sql.ErrNoRows) && !errors.Is(err, pgx.ErrNoRows):
			return "", false, err
		}
	}
	return "", false, b.db.Exec(ctx, `INSERT INTO cowrie_enrich_checkpoints (job, last_key, scanned, written, done, started_at, updated_at)
VALUES (?, '', 0, 0, false, ?, ?)
ON CONFLICT (job) DO UPDATE SET last_key = '', scanned = 0, written = 0, done = false,
    started_at = excluded.started_at, updated_at = excluded.updated_at`, job, now, now)
}

func (b *Backfill) finish(ctx context.Context) error {
	return b.db.Exec(ctx, "UPDATE cowrie_enrich_checkpoints SET done = true, updated_at = ? WHERE job = ?", b.now(), b.opts.Job())
}

// remaining counts the window's sessions after key that lack a snapshot.
func (b *Backfill) remaining(ctx context.Context, key string) (int64, error) {
	cond, args := b.opts.Window.Where(b.db.Dialect, 2)
	q := "SELECT count(*) FROM session_summaries AS s WHERE s.session_id > ?1 AND s.enrichment_at IS NULL" + cond
	if b.db.Dialect == store.Postgres {
		q = "SELECT count(*) FROM session_summaries AS s WHERE s.session_id > $1 AND s.enrichment_at IS NULL" + cond
	}
	var n int64
	var err error
	if b.db.Dialect == store.Postgres {
		err = b.db.Pool.QueryRow(ctx, q, append([]any{key}, args...)...).Scan(&n)
	} else {
		err = b.db.SQL.QueryRowContext(ctx, q, append([]any{key}, args...)...).Scan(&n)
	}
	return n, err
}

// chunkFunc commits the chunk after key and returns its last key, its size
// (0: the window is exhausted) and the sessions written.
type chunkFunc func(ctx context.Context, key string) (last string, scanned, written int64, err error)

// chunker returns the dialect's chunk function and what releases its
// connection.
func (b *Backfill) chunker(ctx context.Context) (chunkFunc, func(), error) {
	job, size := b.opts.Job(), b.opts.ChunkSize
	if b.db.Dialect == store.Postgres {
		conn, err := b.db.Pool.Acquire(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("acquire connection: %w", err)
		}
		// Safe for a resumable job: a commit lost in a crash loses its
		// checkpoint with it, and the resumed run redoes that chunk. It
		// saves a WAL flush per chunk.
		if _, err := conn.Exec(ctx, "SET synchronous_commit = off"); err != nil {
			conn.Release()
			return nil, nil, fmt.Errorf("set synchronous_commit: %w", err)
		}
		release := func() {
			_, _ = conn.Exec(context.WithoutCancel(ctx), "RESET synchronous_commit")
			conn.Release()
		}
		q, wargs := pgChunkSQL(b.opts.Window)
		return func(ctx context.Context, key string) (string, int64, int64, error) {
			var last *string
			var scanned, written int64
			args := append([]any{key, size, job}, wargs...)
			if err := conn.QueryRow(ctx, q, args...).Scan(&last, &scanned, &written); err != nil {
				return "", 0, 0, err
			}
			if last == nil {
				return "", 0, 0, nil
			}
			return *last, scanned, written, nil
		}, release, nil
	}
	boundsQ, wargs := sqliteChunkBoundsSQL(b.opts.Window)
	updateQ, _ := sqliteChunkSQL(b.opts.Window)
	return func(ctx context.Context, key string) (string, int64, int64, error) {
		return b.sqliteChunk(ctx, boundsQ, updateQ, wargs, key)
	}, func() {}, nil
}

// sqliteChunk covers one chunk in one immediate transaction: bounds,
// update, checkpoint.
func (b *Backfill) sqliteChunk(ctx context.Context, boundsQ, updateQ string, wargs []any, key string) (string, int64, int64, error) {
	tx, err := b.db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return "", 0, 0, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var last sql.NullString
	var scanned int64
	if err := tx.QueryRowContext(ctx, boundsQ, append([]any{key, b.opts.ChunkSize}, wargs...)...).Scan(&last, &scanned); err != nil {
		return "", 0, 0, err
	}
	if !last.Valid {
		return "", 0, 0, nil
	}
	r, err := tx.ExecContext(ctx, updateQ, append([]any{key, last.String}, wargs...)...)
	if err != nil {
		return "", 0, 0, err
	}
	written, err := r.RowsAffected()
	if err != nil {
		return "", 0, 0, err
	}
	if _, err := tx.ExecContext(ctx, sqliteCheckpointSQL, b.opts.Job(), last.String, scanned, written, store.FormatTime(b.now())); err != nil {
		return "", 0, 0, err
	}
	return last.String, scanned, written, tx.Commit()
}

// Pending is what a dry run reports: the window's sessions lacking a
// snapshot, and how many of them the inventory could fill now.
type Pending struct {
	Sessions int64
	Ready    int64
}

// Count reports the window's pending sessions without changing anything.
func Count(ctx context.Context, db *store.DB, w Window) (Pending, error) {
	q, args := countSQL(db.Dialect, w)
	var p Pending
	var err error
	if db.Dialect == store.Postgres {
		err = db.Pool.QueryRow(ctx, q, args...).Scan(&p.Sessions, &p.Ready)
	} else {
		err = db.SQL.QueryRowContext(ctx, q, args...).Scan(&p.Sessions, &p.Ready)
	}
	if err != nil {
		return p, fmt.Errorf("snapshots: count pending sessions: %w", err)
	}
	return p, nil
}
