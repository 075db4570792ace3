package pipeline_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
)

type windowConfig struct {
	Size    int           `koanf:"size"`
	MaxWait time.Duration `koanf:"max_wait"`
}

type testConfig struct {
	Window  windowConfig  `koanf:"window"`
	Timeout time.Duration `koanf:"timeout"`
	Name    string        `koanf:"name"`
	Enabled bool          `koanf:"enabled"`
}

func (c *testConfig) Validate() error {
	if c.Window.Size > 1000 {
		return errorString("window.size must be at most 1000")
	}
	return nil
}

type errorString string

func (e errorString) Error() string { return string(e) }

func testRegistry() *pipeline.Registry {
	defaults := func() *testConfig {
		return &testConfig{Window: windowConfig{Size: 500, MaxWait: 2 * time.Second}, Timeout: time.Second}
	}
	return pipeline.NewRegistry(
		pipeline.SourceSpec("list", "emits a fixed list", "", func() *pipeline.NoConfig { return &pipeline.NoConfig{} },
			func(pipeline.Env, *pipeline.NoConfig) (pipeline.Source, error) {
				return &pipelinetest.Source{IPs: []string{"198.51.100.1"}}, nil
			}),
		pipeline.StageSpec("pass", "passes records on", "window: {size: 10, max_wait: 1s}\n", defaults,
			func(pipeline.Env, *testConfig) (pipeline.Stage, error) {
				return pipelinetest.StageFunc(func(_ context.Context, b pipeline.Batch) (pipeline.Batch, error) { return b, nil }), nil
			}),
		pipeline.SinkSpec("collect", "collects records", "", func() *pipeline.NoConfig { return &pipeline.NoConfig{} },
			func(pipeline.Env, *pipeline.NoConfig) (pipeline.Sink, error) { return &pipelinetest.Sink{}, nil }),
	)
}

const goodConfig = `version: 1
name: demo
source:
  type: list
stages:
  - type: pass
    with:
      window:
        size: 20
        max_wait: 3s
  - type: pass
    id: second
sink:
  type: collect
`

func TestLoadAndResolve(t *testing.T) {
	f, err := pipeline.Load("good.yaml", []byte(goodConfig), pipeline.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pipeline.Resolve(testRegistry(), f)
	if err != nil {
		t.Fatal(err)
	}
	got := plan.Stages[0].Config.(*testConfig)
	if got.Window.Size != 20 || got.Window.MaxWait != 3*time.Second || got.Timeout != time.Second {
		t.Errorf("stage 0 options = %+v, want size 20, max_wait 3s and the default timeout 1s", got)
	}
	if plan.Stages[1].ID != "second" || plan.Stages[1].Config.(*testConfig).Window.Size != 500 {
		t.Errorf("stage 1 = %q %+v, want id second with defaults", plan.Stages[1].ID, plan.Stages[1].Config)
	}
}

func TestLoadErrors(t *testing.T) {
	env := map[string]string{"SIZE": "30", "EMPTY": ""}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name        string
		yaml        string
		sets        []string
		errContains []string
	}{
		{
			name:        "unknown top-level key",
			yaml:        goodConfig + "sinks: {}\n",
			errContains: []string{"bad.yaml:15: sinks: unknown key (known: version, name, description, database, source, stages, sink, side_sinks)"},
		},
		{
			name:        "unknown option key",
			yaml:        strings.Replace(goodConfig, "max_wait: 3s", "max_wait: 3s\n        siz: 1", 1),
			errContains: []string{"bad.yaml:11: stages[0].with.window.siz: unknown key (known: window, timeout, name, enabled)"},
		},
		{
			name:        "wrong type",
			yaml:        strings.Replace(goodConfig, "size: 20", "size: twenty", 1),
			errContains: []string{"bad.yaml:9: stages[0].with.window.size: expected an integer, got a string \"twenty\""},
		},
		{
			name:        "bare number duration",
			yaml:        strings.Replace(goodConfig, "max_wait: 3s", "max_wait: 3", 1),
			errContains: []string{"bad.yaml:10: stages[0].with.window.max_wait: duration needs a unit: write \"3s\" or similar, not a bare int"},
		},
		{
			name:        "bad duration",
			yaml:        strings.Replace(goodConfig, "max_wait: 3s", "max_wait: soon", 1),
			errContains: []string{`stages[0].with.window.max_wait: invalid duration "soon"`},
		},
		{
			name:        "unknown stage type",
			yaml:        strings.Replace(goodConfig, "- type: pass\n    id: second", "- type: pas\n    id: second", 1),
			errContains: []string{`bad.yaml:11: stages[1].type: unknown component type "pas" (registered stages: pass)`},
		},
		{
			name:        "unknown source and sink types reported together",
			yaml:        strings.Replace(strings.Replace(goodConfig, "type: list", "type: lst", 1), "type: collect", "type: colect", 1),
			errContains: []string{`source.type: unknown component type "lst"`, `sink.type: unknown component type "colect"`},
		},
		{
			name:        "validation error",
			yaml:        strings.Replace(goodConfig, "size: 20", "size: 2000", 1),
			errContains: []string{"bad.yaml:7: stages[0].with: window.size must be at most 1000"},
		},
		{
			name:        "missing version",
			yaml:        strings.Replace(goodConfig, "version: 1\n", "", 1),
			errContains: []string{"bad.yaml: version: must be 1 (got 0)"},
		},
		{
			name:        "bad name",
			yaml:        strings.Replace(goodConfig, "name: demo", "name: Demo Run", 1),
			errContains: []string{"bad.yaml:2: name: must be lower-case letters"},
		},
		{
			name:        "duplicate id",
			yaml:        strings.Replace(goodConfig, "id: second", "id: pass", 1),
			errContains: []string{`bad.yaml:11: stages[1]: id "pass" is already used by stages[0]`},
		},
		{
			name:        "missing sink",
			yaml:        strings.Replace(goodConfig, "sink:\n  type: collect\n", "", 1),
			errContains: []string{"bad.yaml: sink.type: required"},
		},
		{
			name:        "invalid yaml",
			yaml:        "version: 1\nname: [demo\n",
			errContains: []string{"bad.yaml:1: invalid YAML: did not find expected ',' or ']'"},
		},
		{
			name:        "top level not a mapping",
			yaml:        "- a\n- b\n",
			errContains: []string{"bad.yaml:1: expected a mapping at the top level"},
		},
		{
			name:        "unset variable",
			yaml:        strings.Replace(goodConfig, "size: 20", "size: ${NOPE}", 1),
			errContains: []string{"bad.yaml:9: stages[0].with.window.size: ${NOPE} is not set (write ${NOPE:-default} to allow that)"},
		},
		{
			name:        "required variable with message",
			yaml:        strings.Replace(goodConfig, "name: demo", "name: ${EMPTY:?set EMPTY to the run name}", 1),
			errContains: []string{"bad.yaml:2: name: ${EMPTY}: set EMPTY to the run name"},
		},
		{
			name:        "malformed reference",
			yaml:        strings.Replace(goodConfig, "name: demo", "name: ${demo", 1),
			errContains: []string{"name: malformed reference"},
		},
		{
			name:        "set on unknown id",
			yaml:        goodConfig,
			sets:        []string{"stages.cymru.with.window.size=5"},
			errContains: []string{`bad.yaml: --set stages.cymru.with.window.size=5: stages: no entry with id "cymru" (ids: pass, second)`},
		},
		{
			name:        "set without value",
			yaml:        goodConfig,
			sets:        []string{"stages.pass.with.window.size"},
			errContains: []string{"expected path=value"},
		},
		{
			name:        "set of wrong type",
			yaml:        goodConfig,
			sets:        []string{"stages.second.with.window.size=big"},
			errContains: []string{`stages[1].with.window.size: expected an integer, got a string "big"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := pipeline.Load("bad.yaml", []byte(tt.yaml), pipeline.LoadOptions{Sets: tt.sets, Getenv: getenv})
			if err == nil {
				_, err = pipeline.Resolve(testRegistry(), f)
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.errContains)
			}
			for _, want := range tt.errContains {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error\n  %v\ndoes not contain\n  %s", err, want)
				}
			}
		})
	}
}

func TestExpandAndSet(t *testing.T) {
	env := map[string]string{"SIZE": "30", "NAME": "from-env"}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	y := strings.Replace(goodConfig, "size: 20", "size: ${SIZE}", 1)
	y = strings.Replace(y, "- type: pass\n    id: second", "- type: pass\n    id: second\n    with: {name: \"${NAME}\", timeout: \"${T:-4s}\"}", 1)
	f, err := pipeline.Load("x.yaml", []byte(y), pipeline.LoadOptions{
		Getenv: getenv,
		Sets:   []string{"stages.second.with.enabled=true", "stages.pass.with.window.max_wait=9s", "description=set from the command line"},
	})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pipeline.Resolve(testRegistry(), f)
	if err != nil {
		t.Fatal(err)
	}
	first := plan.Stages[0].Config.(*testConfig)
	second := plan.Stages[1].Config.(*testConfig)
	if first.Window.Size != 30 || first.Window.MaxWait != 9*time.Second {
		t.Errorf("first = %+v, want size 30 from ${SIZE} and max_wait 9s from --set", first)
	}
	if second.Name != "from-env" || second.Timeout != 4*time.Second || !second.Enabled {
		t.Errorf("second = %+v, want name from-env, timeout 4s (default), enabled from --set", second)
	}
	if f.Description != "set from the command line" {
		t.Errorf("description = %q", f.Description)
	}
}

func TestExpandDoesNotInjectYAML(t *testing.T) {
	env := map[string]string{"NAME": "x\nversion: 2"}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	y := strings.Replace(goodConfig, "- type: pass\n    id: second", "- type: pass\n    id: second\n    with: {name: \"${NAME}\"}", 1)
	f, err := pipeline.Load("x.yaml", []byte(y), pipeline.LoadOptions{Getenv: getenv})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pipeline.Resolve(testRegistry(), f)
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Stages[1].Config.(*testConfig).Name; got != "x\nversion: 2" || f.Version != 1 {
		t.Errorf("name = %q, version = %d: a variable's value must stay one string", got, f.Version)
	}
}

func TestRegistryRejectsDuplicates(t *testing.T) {
	reg := testRegistry()
	spec, _ := reg.Lookup(pipeline.KindStage, "pass")
	if err := reg.Add(spec); err == nil || !strings.Contains(err.Error(), `stage "pass": already registered`) {
		t.Errorf("Add(duplicate) = %v, want already registered", err)
	}
}

func TestDisabledComponentsAreLeftOut(t *testing.T) {
	f, err := pipeline.Load("x.yaml", []byte(goodConfig), pipeline.LoadOptions{Sets: []string{"stages.second.disabled=true"}})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pipeline.Resolve(testRegistry(), f)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Stages) != 1 || plan.Stages[0].ID != "pass" {
		t.Fatalf("stages = %+v, want only the first", plan.Stages)
	}

	f, err = pipeline.Load("x.yaml", []byte(goodConfig), pipeline.LoadOptions{Sets: []string{"sink.disabled=true"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = pipeline.Resolve(testRegistry(), f)
	if err == nil || !strings.Contains(err.Error(), "sink.disabled: the sink cannot be disabled") {
		t.Fatalf("disabling the sink: err = %v, want it refused", err)
	}
}
