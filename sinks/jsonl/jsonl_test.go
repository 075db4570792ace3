package jsonl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

var t0 = time.Date(2025, 11, 20, 12, 0, 0, 0, time.UTC)

func records() pipeline.Batch {
	normal := pipeline.NewRecord(" 198.51.100.7 ")
	normal.Addr = netip.MustParseAddr("198.51.100.7")
	normal.Validation = &pipeline.Validation{}
	normal.Sessions = 3
	normal.FirstSeen = time.Date(2025, 10, 1, 8, 30, 15, 123456000, time.UTC)
	normal.LastSeen = time.Date(2025, 11, 19, 23, 0, 0, 0, time.UTC)
	normal.ASN = &pipeline.ASN{Number: 64500, Org: "Example Net", Country: "US", Registry: "arin"}
	normal.Set(pipeline.SourceMaxMind, map[string]any{"country": "US"})
	normal.Skip(pipeline.SourceGreyNoise, "no api key")

	bogon := pipeline.NewRecord("10.0.0.1")
	bogon.Addr = netip.MustParseAddr("10.0.0.1")
	bogon.Validation = &pipeline.Validation{IsBogon: true, Reason: "private"}

	rejected := pipeline.NewRecord("not-an-ip")
	rejected.Reject("validate", errors.New("parse address \"not-an-ip\""))
	return pipeline.Batch{normal, bogon, rejected}
}

func TestWriteLines(t *testing.T) {
	var out bytes.Buffer
	s, err := New(pipeline.Env{RunID: "run-1", Pipeline: "refresh-ips", Now: func() time.Time { return t0 }}, &Config{Path: "-", Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), records()); err != nil {
		t.Fatalf("Write: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	tests := []struct {
		name string
		want string
	}{
		{"normal", `{"ip":"198.51.100.7","raw":" 198.51.100.7 ","first_seen":"2025-10-01T08:30:15.123456Z","last_seen":"2025-11-19T23:00:00Z","session_count":3,` +
			`"asn":{"number":64500,"org":"Example Net","country":"US","registry":"arin"},` +
			`"enrichment":{"_meta":{"run_id":"run-1","pipeline":"refresh-ips","sources_attempted":["maxmind"],"sources_succeeded":["maxmind"],"sources_failed":[],` +
			`"sources_skipped":["greynoise"],"skip_reasons":{"greynoise":"no api key"},"cache_hits":[],"duration_ms":0},` +
			`"maxmind":{"country":"US"},"validation":{"is_bogon":false}}}`},
		{"bogon", `{"ip":"10.0.0.1","raw":"10.0.0.1","first_seen":null,"last_seen":null,"session_count":0,"asn":null,` +
			`"enrichment":{"_meta":{"run_id":"run-1","pipeline":"refresh-ips","sources_attempted":[],"sources_succeeded":[],"sources_failed":[],` +
			`"sources_skipped":[],"skip_reasons":{},"cache_hits":[],"duration_ms":0},"validation":{"is_bogon":true,"reason":"private"}}}`},
		{"rejected", `{"ip":"not-an-ip","raw":"not-an-ip","first_seen":null,"last_seen":null,"session_count":0,"asn":null,"enrichment":null,` +
			`"rejected":{"stage":"validate","reason":"parse address \"not-an-ip\""}}`},
	}
	if len(lines) != len(tests) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(tests), out.String())
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if lines[i] != tt.want {
				t.Errorf("line:\n got %s\nwant %s", lines[i], tt.want)
			}
		})
	}
}

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	s, err := New(pipeline.Env{}, &Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), records()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("line %q: %v", l, err)
		}
	}
	if err := s.Write(context.Background(), records()); err == nil {
		t.Error("Write after Close = nil, want an error")
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name        string
		path        string
		errContains string
	}{
		{"missing directory", filepath.Join(t.TempDir(), "no", "such", "dir", "out.jsonl"), "jsonl: open output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(pipeline.Env{}, &Config{Path: tt.path})
			if err == nil || !strings.Contains(err.Error(), tt.errContains) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.errContains)
			}
		})
	}
}

func TestSampleDecodes(t *testing.T) {
	cfg, err := pipeline.DecodeSample(Spec)
	if err != nil {
		t.Fatalf("decode sample: %v", err)
	}
	if got := cfg.(*Config).Path; got != "-" {
		t.Errorf("sample path = %q, want -", got)
	}
}
