package validate

import "errors"

// ErrMalformed is wrapped by every rejection: the raw value is not a single
// IP address. Test for it with errors.Is; use errors.As with *MalformedError
// to get the reason.
var ErrMalformed = errors.New("malformed address")

// Reasons a raw value is rejected. They are short and stable because
// reports group dead letters by them.
const (
	ReasonEmpty     = "empty"
	ReasonTooLong   = "too long"
	ReasonControl   = "control character"
	ReasonNonASCII  = "non-ascii character"
	ReasonZone      = "has a zone"
	ReasonPrefix    = "is a prefix, not an address"
	ReasonNotAnIP   = "not an ip address"
	ReasonIPv4Octet = "ipv4 octet with leading zero"
)

// MalformedError says why a raw value is not an address. It does not carry
// the input: the record keeps it in Raw, and leaving it out of the message
// keeps hostile or huge input out of logs and makes messages groupable.
type MalformedError struct {
	Reason string
}

func (e *MalformedError) Error() string { return ErrMalformed.Error() + ": " + e.Reason }

// Unwrap lets errors.Is(err, ErrMalformed) hold.
func (e *MalformedError) Unwrap() error { return ErrMalformed }
