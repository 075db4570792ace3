package snapshots

import "errors"

var (
	// ErrNoStore is returned when a snapshot writer has no database.
	ErrNoStore = errors.New("snapshots need a database (set database: or --db)")
	// ErrWindow is returned for a window whose since is not before until.
	ErrWindow = errors.New("empty session window")
)
