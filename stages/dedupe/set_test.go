package dedupe

import (
	"math/rand/v2"
	"testing"
)

// TestSetMatchesMap checks the set against a Go map over random keys,
// including the zero key that marks empty slots, as it grows.
func TestSetMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	s, m := newSet[uint32](), map[uint32]bool{}
	for i := range 20000 {
		k := rng.Uint32N(30000) // repeats, and zero now and then
		if i%1000 == 0 {
			k = 0
		}
		if got, want := s.has(k), m[k]; got != want {
			t.Fatalf("step %d: has(%d) = %v, want %v", i, k, got, want)
		}
		s.add(k)
		m[k] = true
		if s.len() != len(m) {
			t.Fatalf("step %d: len %d, want %d", i, s.len(), len(m))
		}
	}
	if len(s.slots)*3 < s.len()*4 {
		t.Errorf("%d keys in %d slots: more than three quarters full", s.len(), len(s.slots))
	}
	for k := range uint32(30000) {
		if s.has(k) != m[k] {
			t.Fatalf("has(%d) = %v after the run, want %v", k, s.has(k), m[k])
		}
	}
}
