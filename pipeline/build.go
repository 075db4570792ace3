package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Plan is a config whose components were found in a registry and whose
// options decoded and validated. Resolving does no I/O, so `validate`
// checks configs exactly this far.
type Plan struct {
	File      *File
	Source    Part
	Stages    []Part
	Sink      Part
	SideSinks []Part
}

// Part is one resolved component of a plan.
type Part struct {
	ID     string
	Spec   Spec
	Config Config
}

// Resolve looks up every component of f in reg and decodes its options.
// All problems are reported together.
func Resolve(reg *Registry, f *File) (*Plan, error) {
	p := &Plan{File: f}
	var errs []error
	resolve := func(kind Kind, c Component, path string) Part {
		spec, ok := reg.Lookup(kind, c.Type)
		if !ok {
			errs = append(errs, f.Errorf(path+".type", "%v %q (registered %ss: %s)", ErrUnknownComponent, c.Type, kind, strings.Join(reg.Names(kind), ", ")))
			return Part{}
		}
		cfg, err := f.DecodeOptions(spec, c.With, path+".with")
		if err != nil {
			errs = append(errs, err)
		}
		return Part{ID: c.Key(), Spec: spec, Config: cfg}
	}
	if f.Source.Disabled {
		errs = append(errs, f.Errorf("source.disabled", "the source cannot be disabled: a run needs one"))
	}
	if f.Sink.Disabled {
		errs = append(errs, f.Errorf("sink.disabled", "the sink cannot be disabled: a run needs one"))
	}
	p.Source = resolve(KindSource, f.Source, "source")
	for i, c := range f.Stages {
		if !c.Disabled {
			p.Stages = append(p.Stages, resolve(KindStage, c, fmt.Sprintf("stages[%d]", i)))
		}
	}
	p.Sink = resolve(KindSink, f.Sink, "sink")
	for i, c := range f.SideSinks {
		if !c.Disabled {
			p.SideSinks = append(p.SideSinks, resolve(KindSink, c, fmt.Sprintf("side_sinks[%d]", i)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// Pipeline is a built, runnable pipeline.
type Pipeline struct {
	name      string
	runID     string
	logger    *slog.Logger
	progress  *Progress
	source    node[Source]
	stages    []node[Stage]
	sink      node[Sink]
	sideSinks []node[Sink]
}

type node[T any] struct {
	id   string
	kind Kind
	c    T
}

// Build constructs every component of the plan. base is the environment
// shared by all components; each gets a copy with its own ID and logger.
// On error, components already built are closed.
func Build(ctx context.Context, plan *Plan, base Env) (*Pipeline, error) {
	base = base.WithDefaults()
	base.Pipeline = plan.File.Name
	p := &Pipeline{name: plan.File.Name, runID: base.RunID, logger: base.Logger, progress: base.Progress}
	var built []any
	fail := func(err error) (*Pipeline, error) {
		for _, c := range built {
			closeQuietly(c)
		}
		return nil, err
	}
	construct := func(kind Kind, part Part) (any, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		env := base
		env.ID = part.ID
		env.Logger = base.Logger.With(string(kind), part.ID)
		c, err := part.Spec.New(env, part.Config)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", kind, part.ID, err)
		}
		built = append(built, c)
		return c, nil
	}
	c, err := construct(KindSource, plan.Source)
	if err != nil {
		return fail(err)
	}
	p.source = node[Source]{id: plan.Source.ID, kind: KindSource, c: c.(Source)}
	for _, part := range plan.Stages {
		c, err := construct(KindStage, part)
		if err != nil {
			return fail(err)
		}
		p.stages = append(p.stages, node[Stage]{id: part.ID, kind: KindStage, c: c.(Stage)})
	}
	tellAsked(p.stages)
	if c, err = construct(KindSink, plan.Sink); err != nil {
		return fail(err)
	}
	p.sink = node[Sink]{id: plan.Sink.ID, kind: KindSink, c: c.(Sink)}
	for _, part := range plan.SideSinks {
		c, err := construct(KindSink, part)
		if err != nil {
			return fail(err)
		}
		p.sideSinks = append(p.sideSinks, node[Sink]{id: part.ID, kind: KindSink, c: c.(Sink)})
	}
	return p, nil
}

// tellAsked tells every AskListener which sources the stages after it
// ask, when they all say (Asker).
func tellAsked(stages []node[Stage]) {
	for i, st := range stages {
		l, ok := st.c.(AskListener)
		if !ok {
			continue
		}
		asked, known := []string{}, true
		for _, later := range stages[i+1:] {
			a, ok := later.c.(Asker)
			if !ok {
				known = false
				break
			}
			asked = append(asked, a.Asks()...)
		}
		if known {
			l.AskedAfter(asked)
		}
	}
}

// ReplaceSink swaps the main sink (the CLI's --dry-run writes JSON lines
// instead of the inventory). The replaced sink is closed.
func (p *Pipeline) ReplaceSink(id string, s Sink) {
	closeQuietly(p.sink.c)
	p.sink = node[Sink]{id: id, kind: KindSink, c: s}
}

// Name returns the pipeline's name (its status phase).
func (p *Pipeline) Name() string { return p.name }

// Close closes every component that holds resources, in pipeline order.
func (p *Pipeline) Close() error {
	var errs []error
	add := func(c any) {
		if cl, ok := c.(Closer); ok {
			errs = append(errs, cl.Close())
		}
	}
	add(p.source.c)
	for _, s := range p.stages {
		add(s.c)
	}
	add(p.sink.c)
	for _, s := range p.sideSinks {
		add(s.c)
	}
	return errors.Join(errs...)
}

func closeQuietly(c any) {
	if cl, ok := c.(Closer); ok {
		_ = cl.Close()
	}
}
