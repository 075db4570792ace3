package cymru

import "testing"

// NewWhois starts a whois fake for a test or benchmark and closes it when
// tb ends; it fails tb if the fake cannot start.
func NewWhois(tb testing.TB, opts WhoisOptions) *Whois {
	tb.Helper()
	w, err := StartWhois(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = w.Close() })
	return w
}

// NewDNS starts a DNS fake for a test or benchmark and closes it when tb
// ends; it fails tb if the fake cannot start.
func NewDNS(tb testing.TB, opts DNSOptions) *DNS {
	tb.Helper()
	d, err := StartDNS(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = d.Close() })
	return d
}
