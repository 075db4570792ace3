package dedupe

import "errors"

// ErrCapacity is returned by Config.Validate when capacity is too small to
// hold two generations.
var ErrCapacity = errors.New("capacity must be at least 2")
