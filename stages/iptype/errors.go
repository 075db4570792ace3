package iptype

import "errors"

// Sentinels returned by Config.Validate and by the file parsers.
var (
	// ErrReloadCheck means reload_check is negative.
	ErrReloadCheck = errors.New("reload_check must not be negative")
	// ErrCIDRList means a cidr_lists entry lacks a path or a label, or has
	// an unknown type.
	ErrCIDRList = errors.New("invalid cidr_lists entry")
	// ErrNoPrefixes means a file parsed but held no usable prefix, such as
	// a range file of another provider's format.
	ErrNoPrefixes = errors.New("no usable prefix")
)

// ErrDatabaseType means a MaxMind database option names a database of
// another type, such as an ISP database given as anonymous_ip_db.
var ErrDatabaseType = errors.New("wrong database type")
