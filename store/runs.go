package store

import (
	"context"
	"time"
)

// StartRun records the start of a run in cowrie_enrich_runs.
func (db *DB) StartRun(ctx context.Context, runID, pipeline string, started time.Time) error {
	return db.Exec(ctx, `INSERT INTO cowrie_enrich_runs (run_id, pipeline, started_at, state) VALUES (?, ?, ?, 'running')`,
		runID, pipeline, started)
}

// FinishRun records the end of a run. errText must already be free of
// secrets (errors from this package are redacted).
func (db *DB) FinishRun(ctx context.Context, runID, state string, committed, rejected int64, errText string, finished time.Time) error {
	return db.Exec(ctx, `UPDATE cowrie_enrich_runs SET finished_at = ?, state = ?, committed = ?, rejected = ?, error = ? WHERE run_id = ?`,
		finished, state, committed, rejected, NullString(errText), runID)
}
