package cymru

import (
	"net/netip"
	"strconv"
)

// Cymru's DNS zones (reference/protocols.md §1.1).
const (
	zoneOrigin  = "origin.asn.cymru.com."
	zoneOrigin6 = "origin6.asn.cymru.com."
	zoneASN     = "asn.cymru.com."
)

const hexDigits = "0123456789abcdef"

// originName returns the query name for a's origin: the reversed IPv4
// octets under origin.asn.cymru.com, or the reversed nibbles of the fully
// expanded IPv6 address under origin6.asn.cymru.com. (Upstream queried
// "<ip>.origin.asn.cymru.com" unreversed, which names another address.)
func originName(a netip.Addr) string {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		buf := make([]byte, 0, 16+len(zoneOrigin))
		for i := 3; i >= 0; i-- {
			buf = strconv.AppendUint(buf, uint64(b[i]), 10)
			buf = append(buf, '.')
		}
		return string(append(buf, zoneOrigin...))
	}
	b := a.As16()
	buf := make([]byte, 0, 64+len(zoneOrigin6))
	for i := 15; i >= 0; i-- {
		buf = append(buf, hexDigits[b[i]&0xf], '.', hexDigits[b[i]>>4], '.')
	}
	return string(append(buf, zoneOrigin6...))
}

// asName returns the query name for the description of asn.
func asName(asn int64) string {
	return "AS" + strconv.FormatInt(asn, 10) + "." + zoneASN
}
