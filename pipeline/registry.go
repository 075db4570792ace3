package pipeline

import (
	"fmt"
	"sort"
)

// Kind is the role a component plays in a pipeline.
type Kind string

// Component kinds.
const (
	KindSource Kind = "source"
	KindStage  Kind = "stage"
	KindSink   Kind = "sink"
)

// Config is a component's options, decoded from the `with:` mapping of its
// config entry on top of the component's defaults. Validate is pure and
// fast: no I/O.
type Config interface {
	Validate() error
}

// NoConfig is the Config of components without options.
type NoConfig struct{}

// Validate accepts the empty options.
func (NoConfig) Validate() error { return nil }

// Spec describes a registered component: its name, a one-line summary, a
// sample `with:` mapping (YAML, decoded by tests and shown by `stages`), its
// defaults and its constructor. Build it with SourceSpec, StageSpec or
// SinkSpec so the constructor is typed.
type Spec struct {
	Kind    Kind
	Name    string
	Summary string
	Sample  string

	defaults func() Config
	build    func(Env, Config) (any, error)
}

// Defaults returns a fresh copy of the component's default options.
func (s Spec) Defaults() Config { return s.defaults() }

// New builds the component from decoded options.
func (s Spec) New(env Env, cfg Config) (any, error) { return s.build(env, cfg) }

func spec[C Config, T any](kind Kind, name, summary, sample string, defaults func() C, build func(Env, C) (T, error)) Spec {
	return Spec{
		Kind: kind, Name: name, Summary: summary, Sample: sample,
		defaults: func() Config { return defaults() },
		build: func(env Env, cfg Config) (any, error) {
			c, ok := cfg.(C)
			if !ok {
				return nil, fmt.Errorf("%s %q: options of type %T, want %T", kind, name, cfg, *new(C))
			}
			return build(env, c)
		},
	}
}

// SourceSpec describes a source. defaults returns a pointer to the default
// options, into which the config's `with:` mapping is decoded.
func SourceSpec[C Config](name, summary, sample string, defaults func() C, build func(Env, C) (Source, error)) Spec {
	return spec(KindSource, name, summary, sample, defaults, build)
}

// StageSpec describes a stage; see SourceSpec.
func StageSpec[C Config](name, summary, sample string, defaults func() C, build func(Env, C) (Stage, error)) Spec {
	return spec(KindStage, name, summary, sample, defaults, build)
}

// SinkSpec describes a sink (main or side); see SourceSpec.
func SinkSpec[C Config](name, summary, sample string, defaults func() C, build func(Env, C) (Sink, error)) Spec {
	return spec(KindSink, name, summary, sample, defaults, build)
}

// Registry maps component names to specs, one namespace per kind. It is a
// value the caller owns; there is no global registry.
type Registry struct {
	specs map[Kind]map[string]Spec
}

// NewRegistry returns a registry holding specs. It panics on a duplicate,
// which is a programming error; use Add to handle it.
func NewRegistry(specs ...Spec) *Registry {
	r := &Registry{specs: make(map[Kind]map[string]Spec)}
	if err := r.Add(specs...); err != nil {
		panic(err)
	}
	return r
}

// Add registers specs. A name already registered for the same kind is an
// error, so a custom component cannot silently replace a built-in.
func (r *Registry) Add(specs ...Spec) error {
	for _, s := range specs {
		switch s.Kind {
		case KindSource, KindStage, KindSink:
		default:
			return fmt.Errorf("register %q: unknown kind %q", s.Name, s.Kind)
		}
		if s.Name == "" || s.build == nil || s.defaults == nil {
			return fmt.Errorf("register %s %q: spec needs a name, defaults and a constructor", s.Kind, s.Name)
		}
		m := r.specs[s.Kind]
		if m == nil {
			m = make(map[string]Spec)
			r.specs[s.Kind] = m
		}
		if _, dup := m[s.Name]; dup {
			return fmt.Errorf("register %s %q: already registered", s.Kind, s.Name)
		}
		m[s.Name] = s
	}
	return nil
}

// Lookup returns the spec registered under name for kind.
func (r *Registry) Lookup(kind Kind, name string) (Spec, bool) {
	s, ok := r.specs[kind][name]
	return s, ok
}

// Names returns the registered names of kind, sorted.
func (r *Registry) Names(kind Kind) []string {
	names := make([]string, 0, len(r.specs[kind]))
	for n := range r.specs[kind] {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Specs returns every registered spec: sources, then stages, then sinks,
// each sorted by name.
func (r *Registry) Specs() []Spec {
	var out []Spec
	for _, k := range []Kind{KindSource, KindStage, KindSink} {
		for _, n := range r.Names(k) {
			out = append(out, r.specs[k][n])
		}
	}
	return out
}
