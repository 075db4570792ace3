package jsonr

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// Walk calls member for each member of the JSON object in b, in order,
// with the key's text and the value's JSON text (a string keeps its
// quotes). It returns false, possibly after some calls, when b is not
// valid JSON, is not such a flat object, has a key with an escape or a
// byte outside printable ASCII, or when member returns false.
func Walk(b []byte, member func(key, value []byte) bool) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		end, ok := plainKey(b, i)
		if !ok {
			return false
		}
		key := b[i+1 : end-1]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		if end, ok = scalar(b, i); !ok || !member(key, b[i:end]) {
			return false
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainKey returns the end of the key string starting at i, whose bytes
// are printable ASCII other than the backslash: encoding/json matches
// such a key to a field byte for byte, or else ignoring case, which the
// callers leave to it.
func plainKey(b []byte, i int) (end int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20 || c == '\\' || c >= utf8.RuneSelf:
			return 0, false
		}
	}
	return 0, false
}

// scalar returns the end of the string, number or literal starting at i.
func scalar(b []byte, i int) (end int, ok bool) {
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		return str(b, i)
	case c == '-' || c >= '0' && c <= '9':
		return number(b, i)
	case bytes.HasPrefix(b[i:], []byte("true")):
		return i + 4, true
	case bytes.HasPrefix(b[i:], []byte("false")):
		return i + 5, true
	case bytes.HasPrefix(b[i:], []byte("null")):
		return i + 4, true
	}
	return 0, false
}

// str returns the end of the string starting at i. Control characters
// and malformed escapes are syntax errors; invalid UTF-8 is not (it
// decodes to U+FFFD).
func str(b []byte, i int) (end int, ok bool) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			if i++; i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return 0, false
				}
				for _, h := range b[i+1 : i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return 0, false
					}
				}
				i += 4
			default:
				return 0, false
			}
		}
	}
	return 0, false
}

// number returns the end of the JSON number starting at i:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func number(b []byte, i int) (end int, ok bool) {
	digits := func(i int) int {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

// The value readers take a value Walk passed and store it as
// encoding/json stores that JSON in a field of the target's type: null
// leaves a string or a bool as it was and sets a pointer to nil. They
// return false where encoding/json reports an error (a value of another
// type, a number out of range), so that the caller can let encoding/json
// report it.

func isNull(v []byte) bool { return string(v) == "null" }

// String reads v into a string field.
func String(p *string, v []byte) bool {
	if isNull(v) {
		return true
	}
	if len(v) < 2 || v[0] != '"' {
		return false
	}
	s := v[1 : len(v)-1]
	if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		*p = string(s)
		return true
	}
	// Escapes and invalid UTF-8 are rare here: encoding/json decodes
	// this one string.
	return json.Unmarshal(v, p) == nil
}

// Bool reads v into a bool field.
func Bool(p *bool, v []byte) bool {
	switch string(v) {
	case "null":
	case "true":
		*p = true
	case "false":
		*p = false
	default:
		return false
	}
	return true
}

// IntPointer reads v into a *int or *int64 field.
func IntPointer[T int | int64](p **T, v []byte) bool {
	if isNull(v) {
		*p = nil
		return true
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || int64(T(n)) != n {
		return false
	}
	t := T(n)
	*p = &t
	return true
}

// FloatPointer reads v into a *float64 field.
func FloatPointer(p **float64, v []byte) bool {
	if isNull(v) {
		*p = nil
		return true
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return false
	}
	*p = &f
	return true
}
