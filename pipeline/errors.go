package pipeline

import "errors"

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrStopped is returned by emit once the run is stopping; a Source
	// should return it (or ctx.Err()) promptly.
	ErrStopped = errors.New("pipeline stopping")
	// ErrUnknownComponent is wrapped by config errors naming a type that is
	// not registered.
	ErrUnknownComponent = errors.New("unknown component type")
	// ErrInterrupted is returned by Run when a signal stopped the run and
	// everything in flight was drained and committed.
	ErrInterrupted = errors.New("run interrupted")
)
