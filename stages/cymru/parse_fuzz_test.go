package cymru

import (
	"bytes"
	"net/netip"
	"testing"
)

// fuzzAddrs are the addresses every fuzzed bulk answer is read against.
var fuzzAddrs = []netip.Addr{netip.MustParseAddr("45.142.121.9"), netip.MustParseAddr("2a01:4f8::1"), netip.MustParseAddr("8.8.8.8")}

// FuzzParseBulk feeds hostile bulk whois answers to the parser: it never
// panics, and every address it reports on was one it asked about, in
// exactly one of found, not found or error lines.
func FuzzParseBulk(f *testing.F) {
	f.Add([]byte("Bulk mode; whois.cymru.com [2024-01-01 00:00:00 +0000]\n64601   | 45.142.121.9 | 45.142.120.0/22 | RU | ripencc | 2019-04-11 | SIM, RU\n"))
	f.Add([]byte("Bulk mode; x\nNA | 8.8.8.8 | NA | NA | NA | NA | NA\nError: no ASN or IP match on line 4.\n"))
	f.Add([]byte("Bulk mode; x\n64601 64602 | 2a01:4f8:0::1 | 2a01:4f8::/32 | de | RIPENCC | | x|y|z\n| | |\n\x00\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ans, _ := parseBulk(bytes.NewReader(data), fuzzAddrs)
		sent := map[netip.Addr]bool{}
		for _, a := range fuzzAddrs {
			sent[a] = true
		}
		for a, got := range ans.found {
			if !sent[a] || ans.notFound[a] {
				t.Fatalf("found %v: not asked, or also not found", a)
			}
			if !got.Prefix.IsValid() || len(got.ASNs) == 0 {
				t.Fatalf("found %v with prefix %v, ASNs %v", a, got.Prefix, got.ASNs)
			}
		}
		for a := range ans.notFound {
			if !sent[a] {
				t.Fatalf("not found %v: not asked", a)
			}
		}
		for a := range ans.lineErrs {
			if !sent[a] {
				t.Fatalf("error line for %v: not asked", a)
			}
		}
	})
}

// FuzzParseTXT feeds hostile DNS TXT strings to the origin and AS name
// parsers: no panic, and an accepted origin has a prefix and an ASN.
func FuzzParseTXT(f *testing.F) {
	f.Add("64601 | 45.142.120.0/22 | RU | ripencc | 2019-04-11")
	f.Add("64601 64602 | 2a01:4f8::/32 | DE | ripencc |")
	f.Add("64601 | RU | ripencc | 2019-04-11 | SIM-BULLETPROOF-HOSTING | with | pipes, RU")
	f.Add("NA | NA | | |")
	f.Fuzz(func(t *testing.T, txt string) {
		if a, err := parseOrigin([]string{txt, txt}); err == nil && (!a.Prefix.IsValid() || len(a.ASNs) == 0) {
			t.Fatalf("origin %q accepted as prefix %v, ASNs %v", txt, a.Prefix, a.ASNs)
		}
		parseASName([]string{txt})
	})
}
