package cymru

import (
	"container/list"
	"net/netip"
	"sync"
)

// lru is a bounded least-recently-used map, safe for concurrent use. A
// capacity of 0 remembers nothing.
type lru[K comparable, V any] struct {
	mu      sync.Mutex
	cap     int
	order   *list.List // front: most recently used; values are *entry
	items   map[K]*list.Element
	onEvict func(K)
}

type entry[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](capacity int, onEvict func(K)) *lru[K, V] {
	return &lru[K, V]{cap: capacity, order: list.New(), items: map[K]*list.Element{}, onEvict: onEvict}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*entry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// put stores v under k and reports whether k is new.
func (c *lru[K, V]) put(k K, v V) (added bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cap == 0 {
		return false
	}
	if el, ok := c.items[k]; ok {
		el.Value.(*entry[K, V]).val = v
		c.order.MoveToFront(el)
		return false
	}
	if c.order.Len() >= c.cap {
		old := c.order.Back()
		e := c.order.Remove(old).(*entry[K, V])
		delete(c.items, e.key)
		if c.onEvict != nil {
			c.onEvict(e.key)
		}
	}
	c.items[k] = c.order.PushFront(&entry[K, V]{key: k, val: v})
	return true
}

// prefixSet remembers answered BGP prefixes so that an address inside one
// is answered without a query. Memory is bounded by its capacity.
//
// Trade-off, by design: Cymru answers with the longest prefix matching the
// queried address, and a more specific route may exist inside it for
// other addresses. Reusing the covering answer for those gives the
// covering route's origin, which is the same AS in the vast majority of
// cases; a run that needs exact more-specifics sets prefix_cache: 0.
type prefixSet struct {
	answers *lru[netip.Prefix, Answer]

	mu   sync.Mutex
	lens [2][129]int // answered prefixes per family (0: IPv4) and length
}

func newPrefixSet(capacity int) *prefixSet {
	s := &prefixSet{}
	s.answers = newLRU[netip.Prefix, Answer](capacity, func(p netip.Prefix) {
		// Called with the lru's lock held; lens has its own.
		s.mu.Lock()
		s.lens[family(p.Addr())][p.Bits()]--
		s.mu.Unlock()
	})
	return s
}

func family(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// add remembers an answer for its prefix.
func (s *prefixSet) add(a Answer) {
	if !a.Prefix.IsValid() {
		return
	}
	if s.answers.put(a.Prefix, a) {
		s.mu.Lock()
		s.lens[family(a.Prefix.Addr())][a.Prefix.Bits()]++
		s.mu.Unlock()
	}
}

// lookup returns the answer of the longest remembered prefix containing a.
func (s *prefixSet) lookup(a netip.Addr) (Answer, bool) {
	s.mu.Lock()
	lens := s.lens[family(a)]
	s.mu.Unlock()
	for bits := a.BitLen(); bits >= 0; bits-- {
		if lens[bits] <= 0 {
			continue
		}
		p, err := a.Prefix(bits)
		if err != nil {
			continue
		}
		if ans, ok := s.answers.get(p); ok {
			return ans, true
		}
	}
	return Answer{}, false
}
