package iptype

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
)

// ranges is a set of addresses held as sorted, disjoint, non-adjacent
// inclusive ranges, one slice per family, so a lookup is a binary search.
// Overlapping prefixes (Azure's tags repeat each other) merge on build.
type ranges struct {
	v4 []span[uint32]
	v6 []span[u128]
}

type span[T any] struct{ lo, hi T }

// u128 is an IPv6 address as two big-endian halves, compared in order.
type u128 struct{ hi, lo uint64 }

func cmp128(a, b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// next128 returns a+1 and whether it did not overflow.
func next128(a u128) (u128, bool) {
	if a.lo != ^uint64(0) {
		return u128{a.hi, a.lo + 1}, true
	}
	if a.hi != ^uint64(0) {
		return u128{a.hi + 1, 0}, true
	}
	return a, false
}

func to128(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// buildRanges builds the set of the given prefixes. IPv4-mapped IPv6
// prefixes count as IPv4, since records hold unmapped addresses.
func buildRanges(prefixes []netip.Prefix) *ranges {
	var r ranges
	for _, p := range prefixes {
		p = p.Masked()
		a := p.Addr()
		if a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
			a = p.Addr()
		}
		if a.Is4() {
			lo := binary.BigEndian.Uint32(a.AsSlice())
			hi := lo | uint32(uint64(1)<<(32-p.Bits())-1)
			r.v4 = append(r.v4, span[uint32]{lo, hi})
			continue
		}
		lo := to128(a)
		hi := lo
		host := 128 - p.Bits()
		// A shift by 64 yields 0, so a /0 fills the upper half too.
		if host >= 64 {
			hi.lo = ^uint64(0)
			hi.hi |= uint64(1)<<(host-64) - 1
		} else {
			hi.lo |= uint64(1)<<host - 1
		}
		r.v6 = append(r.v6, span[u128]{lo, hi})
	}
	r.v4 = merge(r.v4, cmp.Compare[uint32], func(a uint32) (uint32, bool) { return a + 1, a != ^uint32(0) })
	r.v6 = merge(r.v6, cmp128, next128)
	return &r
}

// merge sorts spans and joins overlapping and adjacent ones.
func merge[T any](s []span[T], compare func(a, b T) int, next func(T) (T, bool)) []span[T] {
	slices.SortFunc(s, func(a, b span[T]) int { return compare(a.lo, b.lo) })
	out := s[:0]
	for _, x := range s {
		if n := len(out); n > 0 {
			last := &out[n-1]
			after, ok := next(last.hi)
			if !ok || compare(x.lo, after) <= 0 {
				if compare(x.hi, last.hi) > 0 {
					last.hi = x.hi
				}
				continue
			}
		}
		out = append(out, x)
	}
	return slices.Clip(out)
}

// contains reports whether a is in the set.
func (r *ranges) contains(a netip.Addr) bool {
	if a.Is4() {
		return find(r.v4, binary.BigEndian.Uint32(a.AsSlice()), cmp.Compare[uint32])
	}
	return find(r.v6, to128(a), cmp128)
}

func find[T any](s []span[T], v T, compare func(a, b T) int) bool {
	// The first span starting after v; the one before it may hold v.
	i, _ := slices.BinarySearchFunc(s, v, func(x span[T], v T) int {
		if compare(x.lo, v) <= 0 {
			return -1
		}
		return 1
	})
	return i > 0 && compare(v, s[i-1].hi) <= 0
}

// size returns the number of disjoint ranges held.
func (r *ranges) size() int { return len(r.v4) + len(r.v6) }
