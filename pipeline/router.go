package pipeline

import (
	"sync"

	"github.com/reugn/go-streams"
)

// router is the go-streams flow in front of a Selective stage: it passes
// on, as one batch, the records of each incoming batch the stage wants,
// and sends the others straight to the flow returned by rejoin, which
// merges them with the stage's output. Both outputs close when the input
// does, so the rejoining flow closes after the stage drained.
type router struct {
	sel    Selective
	in     chan any
	out    chan any // wanted records, towards the stage
	around chan any // the others, towards rejoin
}

var _ streams.Flow = (*router)(nil)

func newRouter(sel Selective) *router {
	r := &router{sel: sel, in: make(chan any), out: make(chan any), around: make(chan any)}
	go r.run()
	return r
}

func (r *router) In() chan<- any  { return r.in }
func (r *router) Out() <-chan any { return r.out }

func (r *router) Via(next streams.Flow) streams.Flow {
	go forward(r.out, next)
	return next
}

func (r *router) To(sink streams.Sink) {
	forward(r.out, sink)
	sink.AwaitCompletion()
}

func (r *router) run() {
	defer close(r.around)
	defer close(r.out)
	for el := range r.in {
		var want, pass Batch
		for _, rec := range asBatch(el) {
			if r.sel.Wants(rec) {
				want = append(want, rec)
			} else {
				pass = append(pass, rec)
			}
		}
		// Passed-over records go first: they are ready now, and the
		// stage may keep the sender waiting while its workers are busy.
		if len(pass) > 0 {
			r.around <- pass
		}
		if len(want) > 0 {
			r.out <- want
		}
	}
}

// rejoin returns the flow that follows the stage: it emits the stage's
// batches and the records routed around it, as they come.
func (r *router) rejoin() streams.Flow {
	j := &joiner{in: make(chan any), out: make(chan any)}
	var wg sync.WaitGroup
	wg.Add(2)
	for _, src := range []<-chan any{j.in, r.around} {
		go func() {
			defer wg.Done()
			for el := range src {
				j.out <- el
			}
		}()
	}
	go func() {
		wg.Wait()
		close(j.out)
	}()
	return j
}

// joiner is the flow returned by router.rejoin.
type joiner struct {
	in  chan any
	out chan any
}

var _ streams.Flow = (*joiner)(nil)

func (j *joiner) In() chan<- any  { return j.in }
func (j *joiner) Out() <-chan any { return j.out }

func (j *joiner) Via(next streams.Flow) streams.Flow {
	go forward(j.out, next)
	return next
}

func (j *joiner) To(sink streams.Sink) {
	forward(j.out, sink)
	sink.AwaitCompletion()
}

// forward sends everything from out to next and closes next's inlet.
func forward(out <-chan any, next streams.Inlet) {
	for el := range out {
		next.In() <- el
	}
	close(next.In())
}

// asBatch returns el, a *Record or a Batch, as a Batch.
func asBatch(el any) Batch {
	switch v := el.(type) {
	case *Record:
		return Batch{v}
	case Batch:
		return v
	}
	return nil
}
