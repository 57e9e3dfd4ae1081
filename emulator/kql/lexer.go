package kql

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tString
	tLong
	tReal
	tSpan     // 1d, 30m, 100ms: the value in nanoseconds
	tDateTime // datetime(2024-01-01): the value in Unix nanoseconds
	tDynamic  // dynamic([...]): the raw JSON
	tPunct    // | , ( ) [ ] . = == != < <= > >= =~ !~ + - * / % ..
	tOp       // word operators that carry a ! or ~: !in, in~, !has, !contains …
)

type token struct {
	kind tokKind
	text string // identifier, punctuation or operator as written; unescaped string
	n    int64  // tLong, tSpan, tDateTime
	f    float64
	pos  int
}

func (t token) is(kind tokKind, text string) bool { return t.kind == kind && t.text == text }

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of query"
	case tString:
		return strconv.Quote(t.text)
	}
	return "'" + t.text + "'"
}

// SyntaxError is text that is not a query of the supported language.
type SyntaxError struct {
	Pos int // byte offset
	Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("syntax error at position %d: %s", e.Pos, e.Msg)
}

func syntaxErr(pos int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// spanUnits are the timespan literal suffixes Kusto accepts.
var spanUnits = map[string]time.Duration{
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"h": time.Hour, "hr": time.Hour, "hrs": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"m": time.Minute, "min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"s": time.Second, "sec": time.Second, "second": time.Second, "seconds": time.Second,
	"ms": time.Millisecond, "milli": time.Millisecond, "millis": time.Millisecond,
	"millisecond": time.Millisecond, "milliseconds": time.Millisecond,
	"microsecond": time.Microsecond, "microseconds": time.Microsecond,
	"tick": 100, "ticks": 100,
}

// negatable word operators: "!has", "!contains_cs" …
var wordOps = map[string]bool{
	"has": true, "has_cs": true, "contains": true, "contains_cs": true, "startswith": true, "startswith_cs": true,
	"endswith": true, "endswith_cs": true, "in": true, "between": true, "hasprefix": true, "hassuffix": true,
}

func isLetter(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// lex splits a query into tokens.
func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '\'' || c == '"':
			s, next, err := lexString(src, i+1, c, false)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tString, text: s, pos: i})
			i = next
		case (c == '@' || c == 'h' || c == 'H') && i+1 < len(src) && (src[i+1] == '\'' || src[i+1] == '"'):
			// @'verbatim' and h'hidden' strings.
			s, next, err := lexString(src, i+2, src[i+1], c == '@')
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tString, text: s, pos: i})
			i = next
		case isDigit(c) || c == '.' && i+1 < len(src) && isDigit(src[i+1]):
			t, next, err := lexNumber(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, t)
			i = next
		case isLetter(c):
			j := i + 1
			for j < len(src) && (isLetter(src[j]) || isDigit(src[j])) {
				j++
			}
			word := src[i:j]
			// Hyphenated operator names: project-away, project-rename.
			if word == "project" && j+1 < len(src) && src[j] == '-' && isLetter(src[j+1]) {
				k := j + 1
				for k < len(src) && isLetter(src[k]) {
					k++
				}
				word, j = src[i:k], k
			}
			if j < len(src) && src[j] == '(' {
				switch word {
				case "datetime", "todatetime", "timespan", "time", "dynamic":
					if t, next, ok, err := lexLiteralCall(src, i, j, word); err != nil {
						return nil, err
					} else if ok {
						toks = append(toks, t)
						i = next
						continue
					}
				}
			}
			if word == "in" && j < len(src) && src[j] == '~' {
				toks = append(toks, token{kind: tOp, text: "in~", pos: i})
				i = j + 1
				continue
			}
			toks = append(toks, token{kind: tIdent, text: word, pos: i})
			i = j
		case c == '!' && i+1 < len(src) && isLetter(src[i+1]):
			j := i + 2
			for j < len(src) && (isLetter(src[j]) || isDigit(src[j])) {
				j++
			}
			word := src[i+1 : j]
			if !wordOps[word] {
				return nil, syntaxErr(i, "unexpected '!%s'", word)
			}
			op := "!" + word
			if word == "in" && j < len(src) && src[j] == '~' {
				op, j = "!in~", j+1
			}
			toks = append(toks, token{kind: tOp, text: op, pos: i})
			i = j
		default:
			p := punct(src[i:])
			if p == "" {
				return nil, syntaxErr(i, "unexpected character %q", rune(c))
			}
			toks = append(toks, token{kind: tPunct, text: p, pos: i})
			i += len(p)
		}
	}
	return append(toks, token{kind: tEOF, pos: len(src)}), nil
}

func punct(s string) string {
	for _, p := range []string{"==", "!=", "<=", ">=", "=~", "!~", "<>", ".."} {
		if strings.HasPrefix(s, p) {
			return p
		}
	}
	switch s[0] {
	case '|', ',', '(', ')', '[', ']', '.', '=', '<', '>', '+', '-', '*', '/', '%', ';':
		return s[:1]
	}
	return ""
}

// lexString reads a string literal whose opening quote is at start-1.
func lexString(src string, start int, quote byte, verbatim bool) (string, int, error) {
	var b strings.Builder
	i := start
	for i < len(src) {
		c := src[i]
		switch {
		case c == quote:
			if verbatim && i+1 < len(src) && src[i+1] == quote {
				b.WriteByte(quote)
				i += 2
				continue
			}
			return b.String(), i + 1, nil
		case c == '\\' && !verbatim:
			if i+1 >= len(src) {
				return "", 0, syntaxErr(i, "unterminated string literal")
			}
			switch e := src[i+1]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '0':
				b.WriteByte(0)
			case '\\', '\'', '"':
				b.WriteByte(e)
			default:
				return "", 0, syntaxErr(i, "invalid escape \\%c in string literal", e)
			}
			i += 2
		case c == '\n' && !verbatim:
			return "", 0, syntaxErr(i, "newline in string literal")
		default:
			b.WriteByte(c)
			i++
		}
	}
	return "", 0, syntaxErr(start-1, "unterminated string literal")
}

func lexNumber(src string, start int) (token, int, error) {
	i := start
	real := false
	for i < len(src) && isDigit(src[i]) {
		i++
	}
	if i < len(src) && src[i] == '.' && !(i+1 < len(src) && src[i+1] == '.') {
		real = true
		i++
		for i < len(src) && isDigit(src[i]) {
			i++
		}
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		j := i + 1
		if j < len(src) && (src[j] == '+' || src[j] == '-') {
			j++
		}
		if j < len(src) && isDigit(src[j]) {
			real = true
			for j < len(src) && isDigit(src[j]) {
				j++
			}
			i = j
		}
	}
	num := src[start:i]
	// A timespan: a number followed directly by a unit.
	if i < len(src) && isLetter(src[i]) {
		j := i
		for j < len(src) && isLetter(src[j]) {
			j++
		}
		unit, ok := spanUnits[src[i:j]]
		if !ok || (j < len(src) && isDigit(src[j])) {
			return token{}, 0, syntaxErr(start, "invalid number %q", src[start:j])
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || f*float64(unit) > 9e18 {
			return token{}, 0, syntaxErr(start, "invalid timespan %q", src[start:j])
		}
		return token{kind: tSpan, text: src[start:j], n: int64(f * float64(unit)), pos: start}, j, nil
	}
	if real {
		f, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return token{}, 0, syntaxErr(start, "invalid number %q", num)
		}
		return token{kind: tReal, text: num, f: f, pos: start}, i, nil
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(num, 64)
		if ferr != nil {
			return token{}, 0, syntaxErr(start, "invalid number %q", num)
		}
		return token{kind: tReal, text: num, f: f, pos: start}, i, nil
	}
	return token{kind: tLong, text: num, n: n, pos: start}, i, nil
}

// lexLiteralCall reads datetime(...), timespan(...) and dynamic(...), whose
// argument is raw text rather than an expression. ok is false when the
// parentheses hold an ordinary expression (datetime("2024-01-01") is the
// function form and is parsed as a call).
func lexLiteralCall(src string, start, open int, word string) (token, int, bool, error) {
	if word != "dynamic" {
		close := strings.IndexByte(src[open:], ')')
		if close < 0 {
			return token{}, 0, false, syntaxErr(open, "missing ')'")
		}
		raw := strings.TrimSpace(src[open+1 : open+close])
		if raw == "" || raw[0] == '"' || raw[0] == '\'' || strings.ContainsAny(raw, "()") {
			return token{}, 0, false, nil
		}
		if word == "timespan" || word == "time" {
			d, err := parseSpanText(raw)
			if err != nil {
				return token{}, 0, false, syntaxErr(open+1, "invalid timespan %q", raw)
			}
			return token{kind: tSpan, text: src[start : open+close+1], n: int64(d), pos: start}, open + close + 1, true, nil
		}
		if raw == "null" {
			return token{kind: tDateTime, text: "null", pos: start}, open + close + 1, true, nil
		}
		t, err := ParseDateTime(raw)
		if err != nil {
			return token{}, 0, false, syntaxErr(open+1, "invalid datetime %q", raw)
		}
		return token{kind: tDateTime, text: src[start : open+close+1], n: t.UnixNano(), pos: start}, open + close + 1, true, nil
	}
	// dynamic(...): balanced brackets, strings skipped.
	depth := 0
	for i := open; i < len(src); i++ {
		switch src[i] {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
			if depth == 0 {
				if src[i] != ')' {
					return token{}, 0, false, syntaxErr(i, "unbalanced dynamic literal")
				}
				return token{kind: tDynamic, text: src[open+1 : i], pos: start}, i + 1, true, nil
			}
		case '"', '\'':
			_, next, err := lexString(src, i+1, src[i], false)
			if err != nil {
				return token{}, 0, false, err
			}
			i = next - 1
		}
	}
	return token{}, 0, false, syntaxErr(open, "missing ')'")
}

// parseSpanText reads a timespan literal's text: "1d", "90m" or
// "[d.]hh:mm[:ss[.fffffff]]".
func parseSpanText(s string) (time.Duration, error) {
	toks, err := lex(s)
	if err == nil && len(toks) == 2 && toks[0].kind == tSpan {
		return time.Duration(toks[0].n), nil
	}
	if err == nil && len(toks) == 2 && toks[0].kind == tLong {
		return time.Duration(toks[0].n) * 24 * time.Hour, nil // a bare number is days
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var days int64
	if d, rest, ok := strings.Cut(s, "."); ok && !strings.Contains(d, ":") {
		n, err := strconv.ParseInt(d, 10, 32)
		if err != nil {
			return 0, err
		}
		days, s = n, rest
	}
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, fmt.Errorf("invalid timespan")
	}
	h, err1 := strconv.ParseInt(parts[0], 10, 32)
	m, err2 := strconv.ParseInt(parts[1], 10, 32)
	if err1 != nil || err2 != nil || h > 23 || m > 59 || h < 0 || m < 0 {
		return 0, fmt.Errorf("invalid timespan")
	}
	var sec float64
	if len(parts) == 3 {
		var err error
		if sec, err = strconv.ParseFloat(parts[2], 64); err != nil || sec < 0 || sec >= 60 {
			return 0, fmt.Errorf("invalid timespan")
		}
	}
	d := time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec*float64(time.Second))
	if neg {
		d = -d
	}
	return d, nil
}

var dateLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02 15:04",
	"2006-01-02",
	"2006-01",
	"2006",
}

// ParseDateTime reads the datetime forms Kusto accepts: ISO 8601 with or
// without a zone (UTC when absent), a space instead of the T, or a date.
func ParseDateTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid datetime %q", s)
}
