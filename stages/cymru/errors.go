package cymru

import (
	"errors"
	"fmt"
)

// Sentinels callers test with errors.Is.
var (
	// ErrConfig is wrapped by every invalid option.
	ErrConfig = errors.New("invalid cymru options")
	// ErrNotFound means Cymru has no route for the address or no name for
	// the ASN (NXDOMAIN, an NA row). It is an answer, not a failure.
	ErrNotFound = errors.New("not found")
	// ErrTruncated means the whois server closed or reset the connection
	// in the middle of its answer.
	ErrTruncated = errors.New("whois answer truncated")
	// ErrServer means a DNS server answered with an error code other than
	// NXDOMAIN (SERVFAIL, REFUSED, …) or a truncated answer it could not
	// complete.
	ErrServer = errors.New("dns server error")
	// ErrMalformed means an answer could not be parsed.
	ErrMalformed = errors.New("malformed answer")
	// ErrClosed is returned by Process after Close.
	ErrClosed = errors.New("stage closed")
)

// LineError is an "Error:" line the whois server wrote for one of the
// addresses it was sent: it could not match the address.
type LineError struct {
	Line    int    // request line number, "begin" being 1
	Message string // the server's text, e.g. "Error: no ASN or IP match on line 3."
}

func (e *LineError) Error() string {
	return fmt.Sprintf("whois line %d: %s", e.Line, e.Message)
}

// RcodeError is a DNS answer with an error code other than NXDOMAIN.
type RcodeError struct {
	Name  string // the query name
	Rcode string // e.g. "SERVFAIL"
}

func (e *RcodeError) Error() string { return fmt.Sprintf("dns %s: %s", e.Name, e.Rcode) }

// Unwrap lets errors.Is(err, ErrServer) hold.
func (e *RcodeError) Unwrap() error { return ErrServer }
