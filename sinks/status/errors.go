package status

import "errors"

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrUnwritableDir is returned by New when the status directory cannot
	// be created or written.
	ErrUnwritableDir = errors.New("status directory not writable")
	// ErrPhaseName is returned by New when the pipeline name cannot serve
	// as a snapshot file name.
	ErrPhaseName = errors.New("pipeline name unusable as status phase")
	// ErrLockBusy is returned when the aggregate's lock stayed held by
	// another process for longer than a snapshot may take.
	ErrLockBusy = errors.New("status lock busy")
)
