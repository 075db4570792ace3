package dedupe

import (
	"hash/maphash"
	"math/bits"
)

// set is an open-addressing hash set of pointer-free keys (IPv4 and IPv6
// addresses as numbers). It spends a key's size and a third more on each
// address, where a Go map of uint32 spends some twenty bytes, and the
// garbage collector has nothing in it to scan. The hash is seeded per
// set, so a list cannot be crafted to make its addresses collide.
type set[K comparable] struct {
	slots []K // the zero key marks an empty slot
	shift uint
	n     int
	zero  bool // the zero key itself is in the set
	seed  maphash.Seed
}

func newSet[K comparable]() *set[K] {
	return &set[K]{seed: maphash.MakeSeed()}
}

func (s *set[K]) len() int { return s.n }

// index returns the first slot to probe for k.
func (s *set[K]) index(k K) int {
	return int(maphash.Comparable(s.seed, k) >> s.shift)
}

func (s *set[K]) has(k K) bool {
	var none K
	if k == none {
		return s.zero
	}
	if len(s.slots) == 0 {
		return false
	}
	_, found := s.probe(k)
	return found
}

func (s *set[K]) add(k K) {
	var none K
	if k == none {
		if !s.zero {
			s.zero = true
			s.n++
		}
		return
	}
	if (s.n+1)*4 > len(s.slots)*3 { // at most three quarters full
		s.grow()
	}
	if i, found := s.probe(k); !found {
		s.slots[i] = k
		s.n++
	}
}

// probe returns the slot holding k, or the empty slot where k belongs.
func (s *set[K]) probe(k K) (i int, found bool) {
	var none K
	mask := len(s.slots) - 1
	for i = s.index(k); ; i = (i + 1) & mask {
		switch s.slots[i] {
		case k:
			return i, true
		case none:
			return i, false
		}
	}
}

// grow doubles the slots and puts the keys back.
func (s *set[K]) grow() {
	old := s.slots
	size := max(2*len(old), 64)
	s.slots = make([]K, size)
	s.shift = uint(64 - bits.TrailingZeros(uint(size)))
	var none K
	for _, k := range old {
		if k != none {
			i, _ := s.probe(k)
			s.slots[i] = k
		}
	}
}
