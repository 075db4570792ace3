package pipeline

import (
	"time"

	"github.com/reugn/go-streams"
)

// batcher is a go-streams flow that regroups records (or batches of them)
// into batches that close at Window.Size records or Window.MaxWait after
// their first record, whichever comes first. go-streams' own Batch resets
// its timer on every element, so a steady trickle would never flush; this
// one measures age from the first record.
type batcher struct {
	pipe
	w Window
}

var _ streams.Flow = (*batcher)(nil)

func newBatcher(w Window) *batcher {
	b := &batcher{pipe: newPipe(), w: w}
	go b.run()
	return b
}

func (b *batcher) run() {
	defer close(b.out)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var (
		pending Batch
		expired <-chan time.Time
	)
	flush := func() {
		timer.Stop()
		expired = nil
		if len(pending) > 0 {
			b.out <- pending
			pending = nil
		}
	}
	add := func(r *Record) {
		if len(pending) == 0 {
			pending = make(Batch, 0, b.w.Size)
			timer.Reset(b.w.MaxWait)
			expired = timer.C
		}
		pending = append(pending, r)
		if len(pending) >= b.w.Size {
			flush()
		}
	}
	for {
		select {
		case el, ok := <-b.in:
			if !ok {
				flush()
				return
			}
			for _, r := range asBatch(el) {
				add(r)
			}
		case <-expired:
			flush()
		}
	}
}
