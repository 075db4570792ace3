package validate

import "net/netip"

// Bogon categories, written to enrichment.validation.reason.
const (
	CategoryUnspecified   = "unspecified"
	CategoryLoopback      = "loopback"
	CategoryPrivate       = "private"
	CategoryShared        = "shared"
	CategoryLinkLocal     = "link-local"
	CategoryDocumentation = "documentation"
	CategoryBenchmarking  = "benchmarking"
	CategoryMulticast     = "multicast"
	CategoryReserved      = "reserved"
)

// special is one entry of the special-purpose table. An empty category marks
// a globally reachable exception inside a larger bogon block.
type special struct {
	prefix   netip.Prefix
	category string
}

// specials is the special-purpose address table, sorted by prefix (address,
// then length), as TestSpecialsSorted checks. The longest matching prefix
// decides. Sources: RFC 6890 and the IANA IPv4 and IPv6 Special-Purpose
// Address Registries (as of 2024), the IANA IPv6 Address Space registry
// (everything outside 2000::/3, fc00::/7, fe80::/10 and ff00::/8 is
// reserved by the IETF), RFC 9637 (3fff::/20) and RFC 9602 (5f00::/16).
//
// Judgement calls, kept routable on purpose:
//   - 6to4 (2002::/16) and NAT64 (64:ff9b::/96) embed a public IPv4
//     address and are globally reachable, so providers may be asked.
//   - Teredo (2001::/32) is routed through public relays; a lookup leaks
//     nothing private, so it is an exception inside 2001::/23.
//   - 192.88.99.0/24, the deprecated 6to4 relay anycast (RFC 7526), is
//     reserved.
//
// IPv4-mapped IPv6 (::ffff:0:0/96) never reaches the table: addresses are
// unmapped first.
var specials = []special{
	{netip.MustParsePrefix("0.0.0.0/8"), CategoryReserved},
	{netip.MustParsePrefix("0.0.0.0/32"), CategoryUnspecified},
	{netip.MustParsePrefix("10.0.0.0/8"), CategoryPrivate},
	{netip.MustParsePrefix("100.64.0.0/10"), CategoryShared},
	{netip.MustParsePrefix("127.0.0.0/8"), CategoryLoopback},
	{netip.MustParsePrefix("169.254.0.0/16"), CategoryLinkLocal},
	{netip.MustParsePrefix("172.16.0.0/12"), CategoryPrivate},
	{netip.MustParsePrefix("192.0.0.0/24"), CategoryReserved},
	{netip.MustParsePrefix("192.0.0.9/32"), ""},  // PCP anycast, globally reachable
	{netip.MustParsePrefix("192.0.0.10/32"), ""}, // TURN anycast, globally reachable
	{netip.MustParsePrefix("192.0.2.0/24"), CategoryDocumentation},
	{netip.MustParsePrefix("192.88.99.0/24"), CategoryReserved},
	{netip.MustParsePrefix("192.168.0.0/16"), CategoryPrivate},
	{netip.MustParsePrefix("198.18.0.0/15"), CategoryBenchmarking},
	{netip.MustParsePrefix("198.51.100.0/24"), CategoryDocumentation},
	{netip.MustParsePrefix("203.0.113.0/24"), CategoryDocumentation},
	{netip.MustParsePrefix("224.0.0.0/4"), CategoryMulticast},
	{netip.MustParsePrefix("240.0.0.0/4"), CategoryReserved},
	{netip.MustParsePrefix("255.255.255.255/32"), CategoryReserved},

	{netip.MustParsePrefix("::/0"), CategoryReserved},
	{netip.MustParsePrefix("::/128"), CategoryUnspecified},
	{netip.MustParsePrefix("::1/128"), CategoryLoopback},
	{netip.MustParsePrefix("64:ff9b::/96"), ""},
	{netip.MustParsePrefix("64:ff9b:1::/48"), CategoryPrivate}, // local-use NAT64, RFC 8215
	{netip.MustParsePrefix("2000::/3"), ""},
	{netip.MustParsePrefix("2001::/23"), CategoryReserved},
	{netip.MustParsePrefix("2001::/32"), ""},     // Teredo
	{netip.MustParsePrefix("2001:1::1/128"), ""}, // PCP anycast
	{netip.MustParsePrefix("2001:1::2/128"), ""}, // TURN anycast
	{netip.MustParsePrefix("2001:2::/48"), CategoryBenchmarking},
	{netip.MustParsePrefix("2001:3::/32"), ""},     // AMT
	{netip.MustParsePrefix("2001:4:112::/48"), ""}, // AS112-v6
	{netip.MustParsePrefix("2001:30::/28"), ""},    // drone remote ID, RFC 9374
	{netip.MustParsePrefix("2001:db8::/32"), CategoryDocumentation},
	{netip.MustParsePrefix("3fff::/20"), CategoryDocumentation},
	{netip.MustParsePrefix("5f00::/16"), CategoryReserved}, // SRv6 SIDs
	{netip.MustParsePrefix("fc00::/7"), CategoryPrivate},
	{netip.MustParsePrefix("fe80::/10"), CategoryLinkLocal},
	{netip.MustParsePrefix("ff00::/8"), CategoryMulticast},
}

// specialFirstOctets marks the first octets of IPv4 addresses that some
// IPv4 entry of specials covers. Most addresses of a list are public, and
// one look at this table spares them the scan.
var specialFirstOctets = func() (octets [256]bool) {
	for _, s := range specials {
		if !s.prefix.Addr().Is4() {
			continue
		}
		first := int(s.prefix.Addr().As4()[0])
		span := 1 << max(8-s.prefix.Bits(), 0)
		for o := first; o < first+span; o++ {
			octets[o] = true
		}
	}
	return octets
}()

// Bogon returns the special-purpose category of a canonical address, and
// whether it is a bogon at all. The table is small (about forty entries),
// so a scan for the longest match costs less than building a trie.
func Bogon(a netip.Addr) (category string, ok bool) {
	if a.Is4() && !specialFirstOctets[a.As4()[0]] {
		return "", false
	}
	best := -1
	for _, s := range specials {
		if s.prefix.Bits() > best && s.prefix.Contains(a) {
			best, category = s.prefix.Bits(), s.category
		}
	}
	return category, category != ""
}
