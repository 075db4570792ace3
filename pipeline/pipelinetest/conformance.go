package pipelinetest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// Env returns a component environment for tests: a discarding logger, the
// real clock, no store. Set Store or other fields as the component needs.
func Env(id string) pipeline.Env {
	return pipeline.Env{
		ID: id, Pipeline: "test", RunID: "test-run",
		Logger:   slog.New(slog.DiscardHandler),
		HTTP:     &http.Client{Timeout: 5 * time.Second},
		Now:      time.Now,
		Progress: pipeline.NewProgress(time.Now()),
	}
}

// Conformance checks that a stage spec keeps the contract of every stage:
// a well-formed spec whose sample decodes and validates; Process accepts an
// empty batch; it never fails the batch for one record, leaves rejected
// records untouched, returns only records it was given (each at most
// once); it returns promptly on a cancelled context; Close is idempotent.
func Conformance(t *testing.T, spec pipeline.Spec, env pipeline.Env) {
	t.Helper()
	if spec.Kind != pipeline.KindStage {
		t.Fatalf("spec %q: kind %q, want stage", spec.Name, spec.Kind)
	}
	if spec.Name == "" || spec.Summary == "" || strings.Contains(spec.Summary, "\n") {
		t.Errorf("spec %q: needs a name and a one-line summary, got %q", spec.Name, spec.Summary)
	}
	if err := spec.Defaults().Validate(); err != nil {
		t.Errorf("spec %q: defaults do not validate: %v", spec.Name, err)
	}
	cfg, err := pipeline.DecodeSample(spec)
	if err != nil {
		t.Fatalf("spec %q: sample does not decode: %v", spec.Name, err)
	}
	c, err := spec.New(env, cfg)
	if err != nil {
		t.Fatalf("spec %q: New: %v", spec.Name, err)
	}
	st := c.(pipeline.Stage)
	defer func() {
		if cl, ok := c.(pipeline.Closer); ok {
			if err := cl.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := cl.Close(); err != nil {
				t.Errorf("second Close: %v (Close must be idempotent)", err)
			}
		}
	}()

	ctx := context.Background()
	if out, err := st.Process(ctx, nil); err != nil || len(out) != 0 {
		t.Errorf("Process(empty) = %d records, %v; want 0, nil", len(out), err)
	}

	public := pipeline.NewRecord("198.51.100.1")
	public.Addr = netip.MustParseAddr("198.51.100.1")
	public.Validation = &pipeline.Validation{}
	bogon := pipeline.NewRecord("10.0.0.1")
	bogon.Addr = netip.MustParseAddr("10.0.0.1")
	bogon.Validation = &pipeline.Validation{IsBogon: true, Reason: "private"}
	rejected := pipeline.NewRecord("not-an-ip")
	rejectErr := errors.New("malformed address")
	rejected.Reject("validate", rejectErr)
	in := pipeline.Batch{public, bogon, rejected}

	out, err := st.Process(ctx, append(pipeline.Batch(nil), in...))
	if err != nil {
		t.Fatalf("Process: %v (one record's trouble must not fail the batch)", err)
	}
	given := map[*pipeline.Record]bool{public: true, bogon: true, rejected: true}
	seen := map[*pipeline.Record]bool{}
	for _, r := range out {
		if !given[r] {
			t.Errorf("Process returned a record it was not given: %q", r.Raw)
		}
		if seen[r] {
			t.Errorf("Process returned %q twice", r.Raw)
		}
		seen[r] = true
	}
	if rejected.Err != rejectErr || rejected.ErrStage != "validate" || len(rejected.Enrichment) != 0 {
		t.Errorf("Process changed a rejected record: err=%v stage=%q enrichment=%v", rejected.Err, rejected.ErrStage, rejected.Enrichment)
	}
	if !bogon.IsBogon() {
		t.Errorf("Process cleared a bogon's classification")
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := pipeline.NewRecord("198.51.100.2")
		r.Addr = netip.MustParseAddr("198.51.100.2")
		_, _ = st.Process(cctx, pipeline.Batch{r})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Errorf("Process did not return within 5s of a cancelled context")
	}
}
