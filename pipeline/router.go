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
	pipe   // out: the wanted records, towards the stage
	sel    Selective
	around chan any // the others, towards rejoin
}

var _ streams.Flow = (*router)(nil)

func newRouter(sel Selective) *router {
	r := &router{pipe: newPipe(), sel: sel, around: make(chan any)}
	go r.run()
	return r
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
	j := newPipe()
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

// pipe is the plumbing of the runtime's own go-streams flows: an inlet,
// an outlet its owner fills and closes, and the forwarding to whatever
// follows.
type pipe struct {
	in  chan any
	out chan any
}

var _ streams.Flow = pipe{}

func newPipe() pipe { return pipe{in: make(chan any), out: make(chan any)} }

func (p pipe) In() chan<- any  { return p.in }
func (p pipe) Out() <-chan any { return p.out }

func (p pipe) Via(next streams.Flow) streams.Flow {
	go forward(p.out, next)
	return next
}

func (p pipe) To(sink streams.Sink) {
	forward(p.out, sink)
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
