package iplist

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

const sampleYAML = "path: ips.txt   # \"-\" reads standard input\n"

// Spec registers the ip_list source.
var Spec = pipeline.SourceSpec("ip_list",
	"Addresses from a file or standard input, one per line (# comments allowed).",
	sampleYAML, DefaultConfig, New)

// Config holds the options of the ip_list source.
type Config struct {
	// Path is the file to read; "-" reads standard input.
	Path string `koanf:"path"`
}

// DefaultConfig returns the defaults: standard input.
func DefaultConfig() *Config { return &Config{Path: "-"} }

// Validate checks the options without I/O.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.Path) == "" {
		return errors.New(`path must name a file, or "-" for standard input`)
	}
	return nil
}

// MaxLine is the longest line read in full. No address comes near it
// (IPv6 text is at most 45 bytes); it only bounds memory on hostile input.
const MaxLine = 4096

// truncatedMark ends the Raw value of an over-long line. It cannot occur in
// an address, so the validate stage always rejects such a record.
const truncatedMark = "...(line truncated)"

// keptPrefix is how much of an over-long line's address is kept in Raw,
// enough to recognise it in a dead letter.
const keptPrefix = 64

// Source emits the addresses read from one input.
type Source struct {
	r      *bufio.Reader
	closer io.Closer // nil for standard input and readers the caller owns
	name   string
}

var (
	_ pipeline.Source = (*Source)(nil)
	_ pipeline.Closer = (*Source)(nil)
)

// New opens cfg.Path, or uses standard input for "-".
func New(_ pipeline.Env, cfg *Config) (pipeline.Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ip_list: %w", err)
	}
	if cfg.Path == "-" {
		return NewReader(os.Stdin, "stdin"), nil
	}
	f, err := os.Open(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("ip_list: %w", err)
	}
	s := NewReader(f, cfg.Path)
	s.closer = f
	return s, nil
}

// NewReader returns a source reading r; name appears in errors. The caller
// keeps ownership of r: Close does not close it.
func NewReader(r io.Reader, name string) *Source {
	return &Source{r: bufio.NewReaderSize(r, MaxLine), name: name}
}

// Run emits one record per address line and returns emit's error as soon
// as it returns one.
func (s *Source) Run(ctx context.Context, emit func(*pipeline.Record) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, long, err := s.readLine()
		if len(line) > 0 || long {
			if raw, ok := parse(line, long); ok {
				if err := emit(pipeline.NewRecord(raw)); err != nil {
					return err
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ip_list: read %s: %w", s.name, err)
		}
	}
}

// readLine returns the next line without its newline. A line longer than
// the buffer comes back cut to the buffer (long is true) and the rest of
// it is skipped, so memory stays at MaxLine whatever the input.
func (s *Source) readLine() (line string, long bool, err error) {
	b, err := s.r.ReadSlice('\n')
	line = string(b)
	for errors.Is(err, bufio.ErrBufferFull) {
		long = true
		_, err = s.r.ReadSlice('\n')
	}
	return strings.TrimSuffix(line, "\n"), long, err
}

// parse extracts the address of a line: surrounding space trimmed, comment
// lines skipped, a comment after whitespace removed. For an over-long line
// (only its first MaxLine bytes in hand) the address is kept only when a
// comment starts within those bytes; otherwise Raw is a marked prefix.
func parse(line string, long bool) (raw string, ok bool) {
	s := strings.TrimSpace(line)
	if s == "" || strings.HasPrefix(s, "#") {
		return "", false
	}
	commented := false
	if i := commentStart(s); i >= 0 {
		s, commented = strings.TrimSpace(s[:i]), true
	}
	if long && !commented {
		if len(s) > keptPrefix {
			s = s[:keptPrefix]
		}
		return s + truncatedMark, true
	}
	return s, true
}

// commentStart returns the index of the first # that follows whitespace,
// or -1.
func commentStart(s string) int {
	for i := 1; i < len(s); i++ {
		if s[i] == '#' && (s[i-1] == ' ' || s[i-1] == '\t') {
			return i
		}
	}
	return -1
}

// Close closes the file New opened; it is safe to call more than once.
func (s *Source) Close() error {
	c := s.closer
	s.closer = nil
	if c == nil {
		return nil
	}
	return c.Close()
}
