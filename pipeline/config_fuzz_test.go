package pipeline_test

import (
	"strings"
	"testing"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// FuzzLoad feeds hostile config files and --set overrides to the loader:
// it never panics and always names the file in its errors.
func FuzzLoad(f *testing.F) {
	f.Add("version: 1\nname: x\nsource: {type: stale_ips, with: {stale_after: 720h}}\nsink: {type: inventory}\n", "stages.cymru.with.window.size=10")
	f.Add("version: 1\nname: x\ndatabase: ${DB}\nsource: {type: ip_list}\nstages: [{type: validate, id: v}]\nsink: {type: inventory}\n", "stages.v.with.x=${DB}")
	f.Add("version: 1\nname: ${NAME:-x}\nsource: {type: a, with: {k: [1, {a: b}]}}\nsink: {type: b}\nside_sinks: [{type: status}]\n", "side_sinks.0.with.dir=/tmp")
	f.Add("&a [*a]\n", "=")
	f.Add("version: 1\nstages: !!binary AAAA\n", "stages.5.with=1")
	f.Add("version: 2\nname: \"\\0\"\nsink: {type: ${X:?missing}}\n", "a.b.c")
	getenv := func(name string) (string, bool) { return "value-of-" + name, name != "UNSET" }
	f.Fuzz(func(t *testing.T, data, set string) {
		_, err := pipeline.Load("fuzz.yaml", []byte(data), pipeline.LoadOptions{Sets: []string{set}, Getenv: getenv})
		if err != nil && !strings.Contains(err.Error(), "fuzz.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
