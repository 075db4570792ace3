package dedupe

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
)

func newStage(t *testing.T, capacity int) *Stage {
	t.Helper()
	st, err := New(pipeline.Env{ID: "dedupe", Progress: pipeline.NewProgress(time.Now())}, &Config{Capacity: capacity})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return st.(*Stage)
}

// dropped reads the stage's duplicates counter.
func dropped(st *Stage) int64 {
	v, _ := st.progress.Value(CounterDuplicates)
	return v
}

// batch builds validated records for the given canonical addresses.
func batch(ips ...string) pipeline.Batch {
	b := make(pipeline.Batch, len(ips))
	for i, ip := range ips {
		b[i] = pipeline.NewRecord(ip)
		b[i].Addr = netip.MustParseAddr(ip)
	}
	return b
}

func ips(b pipeline.Batch) string {
	s := make([]string, len(b))
	for i, r := range b {
		s[i] = r.IP()
	}
	return strings.Join(s, ",")
}

func TestProcess(t *testing.T) {
	st := newStage(t, 100)
	steps := []struct {
		name    string
		in      pipeline.Batch
		want    string
		dropped int64
	}{
		{name: "duplicates inside one batch", in: batch("1.1.1.1", "2.2.2.2", "1.1.1.1", "1.1.1.1"), want: "1.1.1.1,2.2.2.2", dropped: 2},
		{name: "duplicates across batches", in: batch("2.2.2.2", "3.3.3.3"), want: "3.3.3.3", dropped: 3},
		{name: "canonical form decides", in: batch("2001:db8::1", "2001:db8:0:0::1"), want: "2001:db8::1", dropped: 4},
		{name: "empty batch", in: pipeline.Batch{}, want: "", dropped: 4},
	}
	for _, s := range steps {
		in := append(pipeline.Batch(nil), s.in...)
		out, err := st.Process(t.Context(), s.in)
		if err != nil {
			t.Fatalf("%s: Process: %v", s.name, err)
		}
		if got := ips(out); got != s.want {
			t.Errorf("%s: got %q; want %q", s.name, got, s.want)
		}
		if got := dropped(st); got != s.dropped {
			t.Errorf("%s: %s counter = %d; want %d", s.name, CounterDuplicates, got, s.dropped)
		}
		for i := range in {
			if s.in[i] != in[i] {
				t.Errorf("%s: input batch modified at %d", s.name, i)
			}
		}
	}
}

func TestRejectedPassThrough(t *testing.T) {
	st := newStage(t, 100)
	bad := func() *pipeline.Record {
		r := pipeline.NewRecord("garbage")
		r.Reject("validate", errors.New("malformed address"))
		return r
	}
	b := append(batch("1.1.1.1"), bad(), bad())
	out, err := st.Process(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || dropped(st) != 0 {
		t.Fatalf("got %d records, %d dropped; want all 3 kept", len(out), dropped(st))
	}
	// A rejected record is not remembered: a later valid record with the
	// same text still passes.
	r := bad()
	r.Err = nil
	if out, _ := st.Process(t.Context(), pipeline.Batch{r}); len(out) != 1 {
		t.Errorf("address of a rejected record was remembered")
	}
}

func TestCapacityBound(t *testing.T) {
	const capacity = 10
	st := newStage(t, capacity)
	for i := range 1000 {
		ip := fmt.Sprintf("10.0.%d.%d", i/256, i%256)
		if out, _ := st.Process(t.Context(), batch(ip, ip)); len(out) != 1 {
			t.Fatalf("%s: kept %d of two copies; want 1", ip, len(out))
		}
		if n := st.cur.len() + st.old.len(); n > capacity || st.cur.len() > capacity/2 {
			t.Fatalf("after %d addresses: %d remembered (cur %d); capacity %d", i+1, n, st.cur.len(), capacity)
		}
	}
	// The most recent addresses are still remembered.
	if out, _ := st.Process(t.Context(), batch("10.0.3.231")); len(out) != 0 {
		t.Errorf("recent address forgotten")
	}
	// Long-forgotten ones pass again rather than being remembered forever.
	if out, _ := st.Process(t.Context(), batch("10.0.0.0")); len(out) != 1 {
		t.Errorf("oldest address still remembered; memory is not bounded")
	}
}

// TestKeysFollowCanonicalText checks that two records are duplicates
// exactly when their canonical text (Record.IP) is equal, whether or not a
// validate stage ran before dedupe.
func TestKeysFollowCanonicalText(t *testing.T) {
	validated := func(s string) *pipeline.Record {
		r := pipeline.NewRecord(s)
		r.Addr = netip.MustParseAddr(s)
		return r
	}
	raw := pipeline.NewRecord
	records := []*pipeline.Record{
		validated("192.0.2.1"), raw("192.0.2.1"), raw(" 192.0.2.1"),
		validated("::ffff:192.0.2.1"), raw("::ffff:192.0.2.1"),
		validated("2001:db8::1"), raw("2001:db8::1"), raw("2001:DB8::1"), raw("2001:db8:0::1"),
		validated("fe80::1%eth0"), validated("fe80::1%eth1"), validated("fe80::1"), raw("fe80::1%eth0"),
		raw("not-an-ip"), raw("192.0.2.1/32"), raw(""),
	}
	for _, a := range records {
		for _, b := range records {
			if same, want := keyOf(a) == keyOf(b), a.IP() == b.IP(); same != want {
				t.Errorf("%q (addr %v) and %q (addr %v): same key %v, same canonical text %v", a.Raw, a.Addr, b.Raw, b.Addr, same, want)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name        string
		capacity    int
		errContains string
	}{
		{name: "default", capacity: DefaultConfig().Capacity},
		{name: "smallest", capacity: 2},
		{name: "one", capacity: 1, errContains: "at least 2"},
		{name: "negative", capacity: -5, errContains: "capacity -5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Config{Capacity: tt.capacity}).Validate()
			if tt.errContains == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errContains) || !errors.Is(err, ErrCapacity) {
				t.Fatalf("Validate = %v; want ErrCapacity containing %q", err, tt.errContains)
			}
		})
	}
}

func BenchmarkProcess(b *testing.B) {
	st, _ := New(pipeline.Env{}, DefaultConfig())
	in := make([]string, 500)
	for i := range in {
		in[i] = fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256)
	}
	bt := batch(in...)
	for b.Loop() {
		if _, err := st.Process(b.Context(), bt); err != nil {
			b.Fatal(err)
		}
	}
}

func TestConformance(t *testing.T) {
	pipelinetest.Conformance(t, Spec, pipelinetest.Env("dedupe"))
}
