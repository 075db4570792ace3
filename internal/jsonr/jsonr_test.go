package jsonr

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// tokens lists an object's members as json.Decoder reads them: key, then
// value as a Go value (json.Number for numbers).
func tokens(b []byte) ([]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var l []any
	for {
		t, err := d.Token()
		if errors.Is(err, io.EOF) {
			return l, nil
		}
		if err != nil {
			return nil, err
		}
		if _, delim := t.(json.Delim); !delim {
			l = append(l, t)
		}
	}
}

// decoded turns a value Walk passed into what json.Decoder.Token returns.
func decoded(t *testing.T, v []byte) any {
	t.Helper()
	switch {
	case v[0] == '"':
		var s string
		if !String(&s, v) {
			t.Fatalf("String refused the string %s that Walk passed", v)
		}
		return s
	case string(v) == "null":
		return nil
	case string(v) == "true" || string(v) == "false":
		var b bool
		if !Bool(&b, v) {
			t.Fatalf("Bool refused %s", v)
		}
		return b
	}
	return json.Number(v)
}

var seeds = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a":"x","b":null,"c":true,"d":false,"e":-0.5e+3}`,
	`{"country":"DE","asn":3320,"latitude":51.2,"cached_at":"2025-11-06T10:00:00.000000+00:00"}`,
	"{\n\t\"a\" : \"\\u00e9\\n\\\"\" ,\r\"b\":1E9}", `{"a":"\u00e9"}`, "{\"a\":\"\xff\"}",
	`{"a":1,}`, `{"a":01}`, `{"a":[1]}`, `{"a":{"b":1}}`, "{\"a\":\"\x01\"}", `{"a\u0041":1}`, `{"a":1} x`,
	`{"a":-}`, `{"a":1.}`, `{"a":1e}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":tru}`, `{"a":truex}`, `{"a" 1}`,
	`{"a":1`, `{"a":"`, `{`, `[1]`, `"a"`, `null`, ``, `{"a":1}{}`, `{"é":1}`, `{"a":+1}`, `{"a":.5}`,
}

// FuzzWalk holds Walk to encoding/json: what it accepts is valid JSON,
// and it passes the members json.Decoder reads, in order, with the same
// values.
func FuzzWalk(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got []any
		ok := Walk(b, func(k, v []byte) bool {
			got = append(got, string(k), decoded(t, v))
			return true
		})
		if !ok {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("Walk accepted %q, which is not JSON", b)
		}
		want, err := tokens(b)
		if err != nil {
			t.Fatalf("Walk accepted %q; json.Decoder: %v", b, err)
		}
		if len(got) != len(want) {
			t.Fatalf("Walk passed %v for %q; json.Decoder read %v", got, b, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("Walk passed %v for %q; json.Decoder read %v", got, b, want)
			}
		}
	})
}

// TestWalkRefuses keeps the shapes the callers leave to encoding/json
// out of Walk, so that a test that accepts everything cannot pass.
func TestWalkRefuses(t *testing.T) {
	for _, s := range []string{
		`{"a":1,}`, `{"a":01}`, `{"a":[1]}`, `{"a":{"b":1}}`, "{\"a\":\"\x01\"}", `{"a\u0041":1}`, `{"a":1} x`,
		`{"a":1.}`, `{"a":1e}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":truex}`, `{"a":1`, `[1]`, `null`, ``,
		`{"é":1}`, `{"a":+1}`, `{"a":.5}`,
	} {
		if Walk([]byte(s), func(_, _ []byte) bool { return true }) {
			t.Errorf("Walk accepted %q", s)
		}
	}
	n := 0
	if !Walk([]byte(` {"a" : "\"x\"", "b":-1.5e-3,"c":null} `), func(_, _ []byte) bool { n++; return true }) || n != 3 {
		t.Errorf("Walk refused a flat object, or passed %d members of 3", n)
	}
	if Walk([]byte(`{"a":1,"b":2}`), func(k, _ []byte) bool { return string(k) != "b" }) {
		t.Error("Walk went on after member returned false")
	}
}

// sameAsEncodingJSON checks that read stores the JSON value s in a
// pointer field as encoding/json does, or refuses it where encoding/json
// fails.
func sameAsEncodingJSON[T comparable](t *testing.T, s string, read func(**T, []byte) bool) {
	// Walk passes only whole values.
	if end, ok := scalar([]byte(s), 0); !ok || end != len(s) {
		return
	}
	var got, want struct{ P *T }
	ok := read(&got.P, []byte(s))
	err := json.Unmarshal([]byte(`{"P":`+s+`}`), &want)
	if ok != (err == nil) {
		t.Fatalf("%s: read = %v; encoding/json: %v", s, ok, err)
	}
	if ok && ((got.P == nil) != (want.P == nil) || got.P != nil && *got.P != *want.P) {
		t.Fatalf("%s: read stored %v; encoding/json %v", s, got.P, want.P)
	}
}

// FuzzIntPointer and FuzzFloatPointer hold the number readers to what
// encoding/json stores in the same fields.
func FuzzIntPointer(f *testing.F) {
	for _, s := range []string{`0`, `-0`, `12`, `-9223372036854775808`, `9223372036854775808`, `1.0`, `1e3`, `null`, `"1"`, `true`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sameAsEncodingJSON(t, s, IntPointer[int64])
		sameAsEncodingJSON(t, s, IntPointer[int])
	})
}

func FuzzFloatPointer(f *testing.F) {
	for _, s := range []string{`0`, `-0`, `51.5142`, `1e400`, `-1e-400`, `5e-324`, `null`, `"1"`, `false`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { sameAsEncodingJSON(t, s, FloatPointer) })
}
