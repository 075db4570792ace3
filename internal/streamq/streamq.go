package streamq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// Entry field names.
const (
	fieldRaw       = "raw"
	fieldFirstSeen = "first_seen"
	fieldLastSeen  = "last_seen"
	fieldSessions  = "sessions"
)

// ErrBadEntry is returned by Decode for an entry that is not a record.
var ErrBadEntry = errors.New("stream entry is not a record")

// Client returns a Redis client for url without connecting. The parse
// error is replaced because it would echo the URL and its password.
func Client(url string) (*redis.Client, error) {
	opts, err := redis.ParseURL(strings.TrimSpace(url))
	if err != nil {
		return nil, errors.New("redis_url: not a redis:// or rediss:// URL")
	}
	return redis.NewClient(opts), nil
}

// ValidateTarget checks the options both sides share (redis_url, stream,
// group) without any I/O and returns every problem.
func ValidateTarget(url, stream, group string) []error {
	var errs []error
	if _, err := redis.ParseURL(strings.TrimSpace(url)); err != nil {
		errs = append(errs, errors.New("redis_url: not a redis:// or rediss:// URL"))
	}
	if stream == "" {
		errs = append(errs, errors.New("stream: required"))
	}
	if group == "" {
		errs = append(errs, errors.New("group: required"))
	}
	return errs
}

// EnsureGroup creates group on stream (and the stream) at id 0 unless it
// exists.
func EnsureGroup(ctx context.Context, rdb *redis.Client, stream, group string) error {
	err := rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create group %q on %q: %w", group, stream, err)
	}
	return nil
}

// Encode returns the entry values of r.
func Encode(r *pipeline.Record) map[string]any {
	return map[string]any{
		fieldRaw:       r.Raw,
		fieldFirstSeen: formatTime(r.FirstSeen),
		fieldLastSeen:  formatTime(r.LastSeen),
		fieldSessions:  strconv.FormatInt(r.Sessions, 10),
	}
}

// Decode returns the record an entry carries.
func Decode(values map[string]any) (*pipeline.Record, error) {
	raw, ok := values[fieldRaw].(string)
	if !ok {
		return nil, fmt.Errorf("%w: no %s field", ErrBadEntry, fieldRaw)
	}
	r := pipeline.NewRecord(raw)
	var err error
	if r.FirstSeen, err = parseTime(values[fieldFirstSeen]); err != nil {
		return nil, err
	}
	if r.LastSeen, err = parseTime(values[fieldLastSeen]); err != nil {
		return nil, err
	}
	if s, _ := values[fieldSessions].(string); s != "" {
		if r.Sessions, err = strconv.ParseInt(s, 10, 64); err != nil {
			return nil, fmt.Errorf("%w: sessions %q", ErrBadEntry, s)
		}
	}
	return r, nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(v any) (time.Time, error) {
	s, _ := v.(string)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: time %q", ErrBadEntry, s)
	}
	return t, nil
}
