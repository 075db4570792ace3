package cymru

import "testing"

// NewWhois starts a whois fake for a test or benchmark and closes it when
// tb ends; it fails tb if the fake cannot start.
func NewWhois(tb testing.TB, opts WhoisOptions) *Whois {
	tb.Helper()
	return started(tb, func() (*Whois, error) { return StartWhois(opts) })
}

// NewDNS starts a DNS fake for a test or benchmark and closes it when tb
// ends; it fails tb if the fake cannot start.
func NewDNS(tb testing.TB, opts DNSOptions) *DNS {
	tb.Helper()
	return started(tb, func() (*DNS, error) { return StartDNS(opts) })
}

func started[T interface{ Close() error }](tb testing.TB, start func() (T, error)) T {
	tb.Helper()
	s, err := start()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}
