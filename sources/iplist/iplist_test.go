package iplist_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
	"github.com/cowrie-enrich/cowrie-enrich/sources/iplist"
)

func run(t *testing.T, src pipeline.Source) []*pipeline.Record {
	t.Helper()
	var out []*pipeline.Record
	if err := src.Run(context.Background(), func(r *pipeline.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	return out
}

func TestParse(t *testing.T) {
	long := strings.Repeat("1", iplist.MaxLine+10)
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{name: "one per line", input: "192.0.2.1\n2001:db8::1\n", want: []string{"192.0.2.1", "2001:db8::1"}},
		{name: "no final newline", input: "192.0.2.1\n192.0.2.2", want: []string{"192.0.2.1", "192.0.2.2"}},
		{name: "blank lines and comments skipped", input: "\n# list\n   \n\t# indented comment\n192.0.2.1\n", want: []string{"192.0.2.1"}},
		{name: "trailing comment after space", input: "192.0.2.1   # scanner\n192.0.2.2\t#tab\n", want: []string{"192.0.2.1", "192.0.2.2"}},
		{name: "hash without whitespace is kept", input: "192.0.2.1#x\n", want: []string{"192.0.2.1#x"}},
		{name: "surrounding space and CRLF trimmed", input: "  192.0.2.1  \r\n192.0.2.2\r\n", want: []string{"192.0.2.1", "192.0.2.2"}},
		{name: "garbage emitted as found", input: "not-an-ip\n999.1.1.1\n", want: []string{"not-an-ip", "999.1.1.1"}},
		{name: "duplicates kept for dedupe", input: "192.0.2.1\n192.0.2.1\n", want: []string{"192.0.2.1", "192.0.2.1"}},
		{name: "empty input", input: "", want: nil},
		{
			name:  "over-long line truncated and marked, run goes on",
			input: long + "\n192.0.2.1\n",
			want:  []string{strings.Repeat("1", 64) + "...(line truncated)", "192.0.2.1"},
		},
		{
			name:  "over-long comment after an address",
			input: "192.0.2.1 # " + long + "\n192.0.2.2\n",
			want:  []string{"192.0.2.1", "192.0.2.2"},
		},
		{name: "over-long comment line skipped", input: "#" + long + "\n192.0.2.2", want: []string{"192.0.2.2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs := run(t, iplist.NewReader(strings.NewReader(tt.input), "test"))
			var got []string
			for _, r := range recs {
				got = append(got, r.Raw)
				if r.Sessions != 0 || !r.FirstSeen.IsZero() || !r.LastSeen.IsZero() {
					t.Errorf("record %q carries session data", r.Raw)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("emitted %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name        string
		cfg         iplist.Config
		errContains string
	}{
		{name: "stdin", cfg: iplist.Config{Path: "-"}},
		{name: "file", cfg: iplist.Config{Path: "ips.txt"}},
		{name: "empty", cfg: iplist.Config{Path: " "}, errContains: "path must name a file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.errContains == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tt.errContains != "" && (err == nil || !strings.Contains(err.Error(), tt.errContains)) {
				t.Fatalf("Validate = %v, want error containing %q", err, tt.errContains)
			}
		})
	}
}

func TestSampleDecodes(t *testing.T) {
	cfg, err := pipeline.DecodeSample(iplist.Spec)
	if err != nil {
		t.Fatalf("sample: %v", err)
	}
	if p := cfg.(*iplist.Config).Path; p != "ips.txt" {
		t.Errorf("sample path = %q, want ips.txt", p)
	}
}

func TestNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ips.txt")
	if err := os.WriteFile(path, []byte("# incident 42\n192.0.2.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := iplist.New(pipelinetest.Env("ip_list"), &iplist.Config{Path: path})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got := run(t, src); len(got) != 1 || got[0].Raw != "192.0.2.1" {
		t.Errorf("emitted %d records, want 192.0.2.1", len(got))
	}
	c := src.(pipeline.Closer)
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	_, err = iplist.New(pipelinetest.Env("ip_list"), &iplist.Config{Path: filepath.Join(t.TempDir(), "missing.txt")})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("New on a missing file = %v, want os.ErrNotExist", err)
	}
}

func TestRunStops(t *testing.T) {
	input := strings.Repeat("192.0.2.1\n", 100)
	t.Run("emit error", func(t *testing.T) {
		n := 0
		err := iplist.NewReader(strings.NewReader(input), "test").Run(context.Background(), func(*pipeline.Record) error {
			n++
			if n == 2 {
				return pipeline.ErrStopped
			}
			return nil
		})
		if !errors.Is(err, pipeline.ErrStopped) || n != 2 {
			t.Errorf("Run = %v after %d records, want ErrStopped after 2", err, n)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		err := iplist.NewReader(strings.NewReader(input), "test").Run(ctx, func(*pipeline.Record) error {
			n++
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) || n != 1 {
			t.Errorf("Run = %v after %d records, want context.Canceled after 1", err, n)
		}
	})
}
