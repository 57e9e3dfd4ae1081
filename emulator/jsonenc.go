package emulator

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// The emulator writes its large responses with these appenders rather than
// encoding/json: a 10,000-machine page must come out in milliseconds, in the
// live key order, with nulls exactly where the service puts them.

// opt is a value that may be JSON null.
type opt[T any] struct {
	V  T
	OK bool
}

func some[T any](v T) opt[T] { return opt[T]{V: v, OK: true} }

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Unlike encoding/json it does not
// escape <, > and &, as Microsoft's services do not.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendOptString(b []byte, v opt[string]) []byte {
	if !v.OK {
		return append(b, "null"...)
	}
	return appendString(b, v.V)
}

func appendOptInt(b []byte, v opt[int64]) []byte {
	if !v.OK {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, v.V, 10)
}

func appendOptBool(b []byte, v opt[bool]) []byte {
	if !v.OK {
		return append(b, "null"...)
	}
	return strconv.AppendBool(b, v.V)
}

// appendTime writes t the way the live service does: UTC, 0 to 7 fractional
// digits with trailing zeros dropped ("2023-05-04T17:40:05.684607Z"); the
// zero time is null.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}
