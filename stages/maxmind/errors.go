package maxmind

import (
	"errors"
	"fmt"
)

// Sentinels returned by Config.Validate.
var (
	// ErrNoDatabase means neither city_db nor asn_db is set.
	ErrNoDatabase = errors.New("set city_db or asn_db (or both)")
	// ErrReloadCheck means reload_check is negative.
	ErrReloadCheck = errors.New("reload_check must not be negative")
	// ErrConcurrency means concurrency is below 1.
	ErrConcurrency = errors.New("concurrency must be at least 1")
)

// DatabaseTypeError says a file opened but holds the wrong kind of
// database for its option, such as an ASN database given as city_db.
type DatabaseTypeError struct {
	Option string // "city_db" or "asn_db"
	Type   string // the database_type of the file
}

func (e *DatabaseTypeError) Error() string {
	want := "a City or Country"
	if e.Option == optASN {
		want = "an ASN"
	}
	return fmt.Sprintf("%s holds a %q database, want %s database", e.Option, e.Type, want)
}
