package jsonw

import (
	"encoding/json"
	"math"
	"testing"
)

// awkward are strings that need escaping or are otherwise unusual.
var awkward = []string{
	"", "plain", "São Paulo", "Linköping", `quote " and \ backslash`, "tab\tnew\nline\rcr\b\f",
	"<script>&amp;</script>", "\x00\x01\x1f\x7f", "bad utf8 \xff\xfe end", "\u2028 and \u2029", "日本語", "emoji 🛰",
	"truncated \xe6\x97", "AS64500 Example, Inc.",
}

func FuzzAppendString(f *testing.F) {
	for _, s := range awkward {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Errorf("AppendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func FuzzAppendFloat(f *testing.F) {
	for _, v := range []float64{0, 1, -1.5, 1e-7, 1e21, 123.456, 5e-324, math.Copysign(0, -1), math.MaxFloat64} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		want, err := json.Marshal(v)
		got, ok := AppendFloat(nil, v)
		if (err == nil) != ok {
			t.Fatalf("AppendFloat(%v) ok=%v, encoding/json err=%v", v, ok, err)
		}
		if ok && string(got) != string(want) {
			t.Errorf("AppendFloat(%v) = %s, want %s", v, got, want)
		}
	})
}

func TestAppendFloatRefusesWhatIsNotJSON(t *testing.T) {
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got, ok := AppendFloat([]byte("kept"), v); ok || string(got) != "kept" {
			t.Errorf("AppendFloat(%v) = %q, %v; want the buffer unchanged and false", v, got, ok)
		}
	}
}

// TestCompositesMatchEncodingJSON compares the pointer, list and map
// writers with encoding/json, nil and empty included.
func TestCompositesMatchEncodingJSON(t *testing.T) {
	one, big := 1, int64(-1<<63)
	f := 51.5142
	cases := []struct {
		name string
		got  []byte
		v    any
	}{
		{"nil int", AppendIntPointer[int](nil, nil), (*int)(nil)},
		{"int", AppendIntPointer(nil, &one), &one},
		{"min int64", AppendIntPointer(nil, &big), &big},
		{"nil float", must(AppendFloatPointer(nil, nil)), (*float64)(nil)},
		{"float", must(AppendFloatPointer(nil, &f)), &f},
		{"nil strings", AppendStrings(nil, nil), []string(nil)},
		{"empty strings", AppendStrings(nil, []string{}), []string{}},
		{"strings", AppendStrings(nil, awkward), awkward},
		{"nil map", AppendStringMap(nil, nil), map[string]string(nil)},
		{"empty map", AppendStringMap(nil, map[string]string{}), map[string]string{}},
		{"map", AppendStringMap(nil, map[string]string{"b": "x", "a": "<y>", "é": "\n", "9": "", "a1": "z", "A": "q", "k1": "1",
			"k2": "2", "k3": "3", "k4": "4"}), map[string]string{"b": "x", "a": "<y>", "é": "\n", "9": "", "a1": "z", "A": "q",
			"k1": "1", "k2": "2", "k3": "3", "k4": "4"}},
		{"nullable empty", AppendNullable(nil, ""), nil},
		{"nullable", AppendNullable(nil, "São Paulo"), "São Paulo"},
	}
	for _, c := range cases {
		want, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		if string(c.got) != string(want) {
			t.Errorf("%s: %s, want %s", c.name, c.got, want)
		}
	}
}

func must(b []byte, ok bool) []byte {
	if !ok {
		return []byte("refused")
	}
	return b
}
