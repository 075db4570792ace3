package pipeline

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
	"go.yaml.in/yaml/v3"
)

// File is a pipeline config as written in YAML (DESIGN.md §3).
type File struct {
	Version     int         `koanf:"version"`
	Name        string      `koanf:"name"`
	Description string      `koanf:"description"`
	Database    string      `koanf:"database"`
	Source      Component   `koanf:"source"`
	Stages      []Component `koanf:"stages"`
	Sink        Component   `koanf:"sink"`
	SideSinks   []Component `koanf:"side_sinks"`

	// Path is where the config was read from, for error messages.
	Path string `koanf:"-"`
	// lines maps key paths ("stages[2].with.window.size") to YAML lines.
	lines map[string]int
}

// Component is one source, stage or sink entry of a config.
type Component struct {
	Type string         `koanf:"type"`
	ID   string         `koanf:"id"`
	With map[string]any `koanf:"with"`
	// Disabled leaves a stage or side sink out of the run, so a shipped
	// config can run without a provider the operator does not use
	// (--set stages.greynoise.disabled=true).
	Disabled bool `koanf:"disabled"`
}

// Key returns the component's id, defaulting to its type.
func (c Component) Key() string {
	if c.ID != "" {
		return c.ID
	}
	return c.Type
}

// ConfigError is a problem in a config file, located as precisely as the
// YAML allows. Its message names the file, the line where known, and the
// key path.
type ConfigError struct {
	File string
	Line int
	Path string
	Msg  string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// LoadOptions tunes Load.
type LoadOptions struct {
	// Sets are --set overrides, "path=value"; stage and side-sink entries
	// are addressed by id: stages.cymru.with.window.size=1000.
	Sets []string
	// Getenv looks up ${VAR} references; nil means os.LookupEnv.
	Getenv func(string) (string, bool)
}

// Load parses a config file's bytes: YAML, ${VAR} expansion in values,
// --set overrides, then strict decoding of the top level. Component options
// are decoded later, against the registry, by Resolve. path is used in
// error messages only.
func Load(path string, data []byte, opts LoadOptions) (*File, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.LookupEnv
	}
	f := &File{Path: path, lines: map[string]int{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(path, err)
	}
	if len(doc.Content) == 0 {
		return nil, &ConfigError{File: path, Msg: "empty config: expected version, name, source, stages and sink"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &ConfigError{File: path, Line: root.Line, Msg: "expected a mapping at the top level"}
	}
	if err := f.walk(root, "", getenv); err != nil {
		return nil, err
	}
	var tree map[string]any
	if err := root.Decode(&tree); err != nil {
		return nil, yamlError(path, err)
	}
	for _, s := range opts.Sets {
		if err := applySet(tree, s); err != nil {
			return nil, &ConfigError{File: path, Path: "--set " + s, Msg: err.Error()}
		}
	}

	k := koanf.New("\x00") // no delimiter: keys are never split on dots
	if err := k.Load(confmap.Provider(tree, ""), nil); err != nil {
		return nil, &ConfigError{File: path, Msg: err.Error()}
	}
	var md mapstructure.Metadata
	err := k.UnmarshalWithConf("", f, koanf.UnmarshalConf{DecoderConfig: decoderConfig(f, &md)})
	if err != nil {
		return nil, f.decodeError("", err)
	}
	if err := f.unknown("", md.Unused, "version, name, description, database, source, stages, sink, side_sinks"); err != nil {
		return nil, err
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	return f, nil
}

// Errorf returns a ConfigError located at key path p.
func (f *File) Errorf(p, format string, args ...any) error {
	return &ConfigError{File: f.Path, Line: f.line(p), Path: p, Msg: fmt.Sprintf(format, args...)}
}

// line returns the YAML line of key path p, or of its nearest ancestor.
func (f *File) line(p string) int {
	for p != "" {
		if l, ok := f.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func (f *File) check() error {
	var errs []error
	if f.Version != 1 {
		errs = append(errs, f.Errorf("version", "must be 1 (got %d)", f.Version))
	}
	if !namePattern.MatchString(f.Name) {
		errs = append(errs, f.Errorf("name", "must be lower-case letters, digits, '-' or '_' (it names the status file), got %q", f.Name))
	}
	if f.Source.Type == "" {
		errs = append(errs, f.Errorf("source.type", "required"))
	}
	if f.Sink.Type == "" {
		errs = append(errs, f.Errorf("sink.type", "required"))
	}
	check := func(list string, cs []Component) {
		seen := map[string]int{}
		for i, c := range cs {
			p := fmt.Sprintf("%s[%d]", list, i)
			if c.Type == "" {
				errs = append(errs, f.Errorf(p+".type", "required"))
				continue
			}
			if j, dup := seen[c.Key()]; dup {
				errs = append(errs, f.Errorf(p, "id %q is already used by %s[%d]; give one of them an id", c.Key(), list, j))
			}
			seen[c.Key()] = i
		}
	}
	check("stages", f.Stages)
	check("side_sinks", f.SideSinks)
	return errors.Join(errs...)
}

// walk records key lines and expands ${VAR} references in scalar values.
func (f *File) walk(n *yaml.Node, p string, getenv func(string) (string, bool)) error {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			kp := key.Value
			if p != "" {
				kp = p + "." + key.Value
			}
			f.lines[kp] = key.Line
			if err := f.walk(val, kp, getenv); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			ip := fmt.Sprintf("%s[%d]", p, i)
			f.lines[ip] = c.Line
			if err := f.walk(c, ip, getenv); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return nil
		}
		v, err := Expand(n.Value, getenv)
		if err != nil {
			return &ConfigError{File: f.Path, Line: n.Line, Path: p, Msg: err.Error()}
		}
		n.Value = v
		if n.Style == 0 {
			// A plain scalar is re-typed after expansion, so
			// "size: ${N:-500}" decodes as an integer.
			n.Tag = ""
		}
	case yaml.AliasNode:
		return &ConfigError{File: f.Path, Line: n.Line, Path: p, Msg: "YAML aliases are not supported; repeat the value"}
	}
	return nil
}

var refPattern = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}`)

// Expand replaces ${VAR}, ${VAR:-default} and ${VAR:?message} in s. An unset
// ${VAR} is an error naming the variable (a silent empty string would hide
// a typo); ${VAR:?message} fails with the message when VAR is unset or empty.
func Expand(s string, getenv func(string) (string, bool)) (string, error) {
	if strings.Count(s, "${") != len(refPattern.FindAllStringIndex(s, -1)) {
		return "", fmt.Errorf("malformed reference in %q: write ${NAME}, ${NAME:-default} or ${NAME:?message}", s)
	}
	var err error
	out := refPattern.ReplaceAllStringFunc(s, func(m string) string {
		if err != nil {
			return ""
		}
		g := refPattern.FindStringSubmatch(m)
		name, op, arg := g[1], g[2], g[3]
		v, ok := getenv(name)
		switch op {
		case ":-":
			if !ok || v == "" {
				return arg
			}
		case ":?":
			if !ok || v == "" {
				msg := arg
				if msg == "" {
					msg = "must be set"
				}
				err = fmt.Errorf("${%s}: %s", name, msg)
			}
		default:
			if !ok {
				err = fmt.Errorf("${%s} is not set (write ${%s:-default} to allow that)", name, name)
			}
		}
		return v
	})
	if err != nil {
		return "", err
	}
	return out, nil
}

// applySet applies one "path=value" override to the decoded tree. The value
// is parsed as YAML, so numbers, booleans and lists keep their types.
func applySet(tree map[string]any, s string) error {
	path, raw, ok := strings.Cut(s, "=")
	if !ok || path == "" {
		return errors.New("expected path=value, e.g. stages.cymru.with.window.size=1000")
	}
	var val any
	if err := yaml.Unmarshal([]byte(raw), &val); err != nil {
		return fmt.Errorf("value %q: %w", raw, err)
	}
	parts := strings.Split(path, ".")
	var cur any = tree
	for i, part := range parts {
		last := i == len(parts)-1
		switch node := cur.(type) {
		case map[string]any:
			if last {
				node[part] = val
				return nil
			}
			next, ok := node[part]
			if !ok || next == nil {
				next = map[string]any{}
				node[part] = next
			}
			cur = next
		case []any:
			el, err := findEntry(node, part)
			if err != nil {
				return fmt.Errorf("%s: %w", strings.Join(parts[:i], "."), err)
			}
			if last {
				return errors.New("cannot replace a whole entry; set one of its keys")
			}
			cur = el
		default:
			return fmt.Errorf("%s is not a mapping", strings.Join(parts[:i], "."))
		}
	}
	return nil
}

// findEntry finds a list entry by id (default: its type) or by index.
func findEntry(list []any, key string) (map[string]any, error) {
	var ids []string
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		id, _ := m["id"].(string)
		if id == "" {
			id, _ = m["type"].(string)
		}
		if id == key {
			return m, nil
		}
		ids = append(ids, id)
	}
	if i, err := strconv.Atoi(key); err == nil && i >= 0 && i < len(list) {
		if m, ok := list[i].(map[string]any); ok {
			return m, nil
		}
	}
	return nil, fmt.Errorf("no entry with id %q (ids: %s)", key, strings.Join(ids, ", "))
}

// DecodeOptions decodes a component's `with:` mapping over the spec's
// defaults, strictly: unknown keys and wrong types are errors, durations
// must be strings with a unit. p is the key path of the mapping, for
// messages. The decoded config is validated.
func (f *File) DecodeOptions(spec Spec, with map[string]any, p string) (Config, error) {
	cfg := spec.Defaults()
	if len(with) > 0 {
		var md mapstructure.Metadata
		dec, err := mapstructure.NewDecoder(decoderConfig(cfg, &md))
		if err != nil {
			return nil, err
		}
		if err := dec.Decode(with); err != nil {
			return nil, f.decodeError(p, err)
		}
		if err := f.unknown(p, md.Unused, strings.Join(fieldNames(cfg), ", ")); err != nil {
			return nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, f.Errorf(p, "%v", err)
	}
	return cfg, nil
}

// DecodeSample decodes a spec's sample `with:` YAML as a config would, so
// tests can prove every sample is valid.
func DecodeSample(spec Spec) (Config, error) {
	f := &File{Path: spec.Name + " sample", lines: map[string]int{}}
	var with map[string]any
	if err := yaml.Unmarshal([]byte(spec.Sample), &with); err != nil {
		return nil, yamlError(f.Path, err)
	}
	return f.DecodeOptions(spec, with, "with")
}

func decoderConfig(result any, md *mapstructure.Metadata) *mapstructure.DecoderConfig {
	return &mapstructure.DecoderConfig{
		Result:   result,
		TagName:  "koanf",
		Metadata: md,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			durationHook,
			mapstructure.TextUnmarshallerHookFunc(),
		),
	}
}

var durationType = reflect.TypeOf(time.Duration(0))

// durationHook decodes "2s" into a time.Duration and refuses bare numbers,
// whose unit a reader cannot know.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("invalid duration %q: use a number with a unit, e.g. \"2s\", \"720h\"", v)
		}
		return d, nil
	case time.Duration:
		return v, nil
	}
	return nil, fmt.Errorf("duration needs a unit: write \"%vs\" or similar, not a bare %v", data, from)
}

func (f *File) decodeError(prefix string, err error) error {
	var errs []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		var de *mapstructure.DecodeError
		if errors.As(e, &de) {
			p := de.Name()
			if prefix != "" {
				p = prefix + "." + p
			}
			errs = append(errs, f.Errorf(p, "%s", simplify(de.Unwrap())))
			return
		}
		errs = append(errs, f.Errorf(prefix, "%v", e))
	}
	walk(err)
	return errors.Join(errs...)
}

// simplify rewords mapstructure's type errors for people who write YAML.
func simplify(err error) string {
	var ut *mapstructure.UnconvertibleTypeError
	if errors.As(err, &ut) {
		return fmt.Sprintf("expected %s, got %s %q", kindName(ut.Expected.Type()), yamlKind(ut.Value), fmt.Sprint(ut.Value))
	}
	return err.Error()
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

func yamlKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int, int64, uint64:
		return "an integer"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

func (f *File) unknown(prefix string, unused []string, known string) error {
	if len(unused) == 0 {
		return nil
	}
	sort.Strings(unused)
	var errs []error
	for _, u := range unused {
		p := u
		if prefix != "" {
			p = prefix + "." + u
		}
		errs = append(errs, f.Errorf(p, "unknown key (known: %s)", known))
	}
	return errors.Join(errs...)
}

// fieldNames lists the koanf keys of a config struct, for messages.
func fieldNames(cfg any) []string {
	t := reflect.TypeOf(cfg)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := range t.NumField() {
		tag := strings.Split(t.Field(i).Tag.Get("koanf"), ",")[0]
		if tag != "" && tag != "-" {
			names = append(names, tag)
		}
	}
	if len(names) == 0 {
		return []string{"(none)"}
	}
	return names
}

func yamlError(path string, err error) error {
	// yaml.v3 messages read "yaml: line 3: mapping values are not allowed";
	// lift the line into our location format.
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if strings.HasPrefix(msg, "line ") {
		rest := msg[len("line "):]
		if i := strings.Index(rest, ":"); i > 0 {
			if n, convErr := strconv.Atoi(rest[:i]); convErr == nil {
				line, msg = n, strings.TrimSpace(rest[i+1:])
			}
		}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msg = strings.Join(te.Errors, "; ")
	}
	return &ConfigError{File: path, Line: line, Msg: "invalid YAML: " + msg}
}
