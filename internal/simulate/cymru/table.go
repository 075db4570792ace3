package cymru

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Route is one announced prefix as Cymru describes it.
type Route struct {
	Prefix    netip.Prefix
	ASNs      []uint32 // origin ASNs; several for a multi-origin prefix
	Country   string   // upper case ISO code
	Registry  string   // lower case RIR name
	Allocated string   // YYYY-MM-DD; may be empty
	ASName    string   // AS description of the first origin ASN
}

// originField is the first field of a row: the origin ASNs separated by
// spaces.
func (r Route) originField() string {
	parts := make([]string, len(r.ASNs))
	for i, a := range r.ASNs {
		parts[i] = strconv.FormatUint(uint64(a), 10)
	}
	return strings.Join(parts, " ")
}

// Table answers lookups by longest prefix match. It is immutable once
// built, so servers share it without locking.
type Table struct {
	// byLen maps a prefix length (IPv6 lengths offset by 33) to the routes
	// of that length keyed by masked prefix; lens lists the lengths in use,
	// longest first, so a lookup costs one map probe per length.
	byLen map[int]map[netip.Prefix]Route
	lens  []int
	as    map[uint32]Route
}

// NewTable builds a table. Prefixes are masked; a later route for the same
// prefix replaces an earlier one.
func NewTable(routes ...Route) *Table {
	t := &Table{byLen: map[int]map[netip.Prefix]Route{}, as: map[uint32]Route{}}
	for _, r := range routes {
		r.Prefix = r.Prefix.Masked()
		k := lenKey(r.Prefix)
		m := t.byLen[k]
		if m == nil {
			m = map[netip.Prefix]Route{}
			t.byLen[k] = m
			t.lens = append(t.lens, k)
		}
		m[r.Prefix] = r
		if len(r.ASNs) > 0 {
			if _, ok := t.as[r.ASNs[0]]; !ok {
				t.as[r.ASNs[0]] = r
			}
		}
	}
	slices.SortFunc(t.lens, func(a, b int) int { return cmp.Compare(b, a) })
	return t
}

func lenKey(p netip.Prefix) int {
	if p.Addr().Is4() {
		return p.Bits()
	}
	return 33 + p.Bits()
}

// Lookup returns the most specific route containing a.
func (t *Table) Lookup(a netip.Addr) (Route, bool) {
	m := t.Matches(a)
	if len(m) == 0 {
		return Route{}, false
	}
	return m[0], true
}

// Matches returns every route containing a, most specific first: the DNS
// zones answer with one TXT record per matching prefix.
func (t *Table) Matches(a netip.Addr) []Route {
	a = a.Unmap()
	var out []Route
	for _, k := range t.lens {
		bits := k
		if !a.Is4() {
			if k < 33 {
				continue
			}
			bits = k - 33
		} else if k >= 33 {
			continue
		}
		p, err := a.Prefix(bits)
		if err != nil {
			continue
		}
		if r, ok := t.byLen[k][p]; ok {
			out = append(out, r)
		}
	}
	return out
}

// AS returns the route that names asn (the first route originated by it).
func (t *Table) AS(asn uint32) (Route, bool) {
	r, ok := t.as[asn]
	return r, ok
}

// Sample is the deterministic table tests share. Its prefixes look
// routable, so the validate stage lets their addresses through, but they
// are test data only: nothing ever contacts them. It covers IPv4 and IPv6,
// a multi-origin prefix, a more specific prefix inside a covering one, an
// empty allocation date and an AS without a name.
func Sample() *Table { return NewTable(SampleRoutes()...) }

// SampleRoutes returns the routes of Sample.
func SampleRoutes() []Route {
	p := netip.MustParsePrefix
	return []Route{
		{Prefix: p("68.22.187.0/24"), ASNs: []uint32{23028}, Country: "US", Registry: "arin", Allocated: "2002-03-15", ASName: "TEAM-CYMRU - Team Cymru Inc., US"},
		{Prefix: p("8.8.8.0/24"), ASNs: []uint32{15169}, Country: "US", Registry: "arin", Allocated: "1992-12-01", ASName: "GOOGLE - Google LLC, US"},
		{Prefix: p("104.16.0.0/12"), ASNs: []uint32{13335}, Country: "US", Registry: "arin", Allocated: "2014-03-28", ASName: "CLOUDFLARENET - Cloudflare, Inc., US"},
		{Prefix: p("104.16.0.0/13"), ASNs: []uint32{13335, 209242}, Country: "US", Registry: "arin", Allocated: "2014-03-28", ASName: "CLOUDFLARENET - Cloudflare, Inc., US"},
		{Prefix: p("185.220.100.0/22"), ASNs: []uint32{60729}, Country: "DE", Registry: "ripencc", Allocated: "", ASName: "ZWIEBELFREUNDE, DE"},
		{Prefix: p("45.155.205.0/24"), ASNs: []uint32{49505}, Country: "RU", Registry: "ripencc", Allocated: "2020-01-29", ASName: ""},
		{Prefix: p("2001:4860::/32"), ASNs: []uint32{15169}, Country: "US", Registry: "arin", Allocated: "2005-03-14", ASName: "GOOGLE - Google LLC, US"},
		{Prefix: p("2a03:2880::/29"), ASNs: []uint32{32934}, Country: "IE", Registry: "ripencc", Allocated: "2010-07-01", ASName: "FACEBOOK - Meta Platforms, Inc., US"},
	}
}

// String describes a route for test failure messages.
func (r Route) String() string {
	return fmt.Sprintf("%s AS%s", r.Prefix, r.originField())
}
