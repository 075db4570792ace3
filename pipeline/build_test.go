package pipeline_test

import (
	"slices"
	"testing"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
)

// asker is a stage that says what it asks.
type asker struct {
	pipeline.Stage
	asks []string
}

func (a asker) Asks() []string { return a.asks }

// listener records what Build told it, and asks nothing itself.
type listener struct {
	pipeline.Stage
	told  bool
	asked []string
}

func (l *listener) AskedAfter(s []string) { l.told, l.asked = true, s }
func (l *listener) Asks() []string        { return nil }

// TestBuildTellsWhatIsAskedAfter checks that an AskListener learns the
// sources of the stages after it (not before it), and is not told when a
// stage after it does not say what it asks.
func TestBuildTellsWhatIsAskedAfter(t *testing.T) {
	before := asker{pass(), []string{"maxmind"}}
	first, second := &listener{Stage: pass()}, &listener{Stage: pass()}
	harness{source: &pipelinetest.Source{}, sink: &pipelinetest.Sink{}, stages: []pipeline.Stage{
		before, first, asker{pass(), []string{"cymru"}}, asker{pass(), nil}, second, asker{pass(), []string{"greynoise"}},
	}}.build(t)
	if !first.told || !slices.Equal(first.asked, []string{"cymru", "greynoise"}) {
		t.Errorf("first listener told %v (%v); want [cymru greynoise]", first.told, first.asked)
	}
	if !second.told || !slices.Equal(second.asked, []string{"greynoise"}) {
		t.Errorf("second listener told %v (%v); want [greynoise]", second.told, second.asked)
	}

	quiet := &listener{Stage: pass()}
	harness{source: &pipelinetest.Source{}, sink: &pipelinetest.Sink{}, stages: []pipeline.Stage{
		quiet, asker{pass(), []string{"cymru"}}, pass(),
	}}.build(t)
	if quiet.told {
		t.Errorf("listener told %v although a stage after it does not say what it asks", quiet.asked)
	}
}
