// Package status provides the status side sink: upstream-compatible JSON
// snapshots of a run's committed progress, read by monitoring scripts and by
// `cowrie-enrich status`.
//
// It writes <dir>/<phase>.json and the aggregate <dir>/status.json (DESIGN
// §5). Invariants:
//
//   - Only committed batches are counted: the runtime feeds this sink after
//     the main sink's Write returned nil.
//   - Every file is replaced atomically (temp file in the same directory,
//     fsync, rename), so a reader never sees a torn snapshot.
//   - The aggregate is read, modified and written under an exclusive flock
//     on <dir>/status.json.lock, so concurrent runs (several phases, several
//     workers) never lose each other's phases; phases written by other
//     tools are kept byte for byte.
//   - Writing a snapshot never fails a run: a transient failure is logged
//     once at Warn. Only an unusable directory, found by New, is an error.
//   - Snapshots hold counts, times and addresses only; never secrets.
package status
