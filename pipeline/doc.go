// Package pipeline is the domain core of cowrie-enrich: the Record that flows
// through a pipeline, the small Source, Stage and Sink interfaces components
// implement, the Registry of named components, strict loading of YAML
// pipeline configs, Build, and the Run loop.
//
// Invariants the package keeps:
//
//   - A record is acknowledged (counted as done, shown in status) only after
//     the main sink has committed it; side sinks see committed batches only.
//   - A per-record failure is marked on the record and never fails its batch;
//     a stage or sink that returns an error fails the run, and what it held
//     is not committed, so a rerun picks it up again.
//   - Shutdown drains in order: the source stops, stages flush, the sink
//     commits, side sinks write last.
//   - github.com/reugn/go-streams is wiring only and never appears in the
//     exported API.
package pipeline
