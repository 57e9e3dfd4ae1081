package odata

import (
	"fmt"
	"strings"
	"time"
)

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokString
	tokNumber
	tokDateTime
	tokGuid
	tokLParen
	tokRParen
	tokComma
	tokColon
	tokSlash
)

type token struct {
	kind tokKind
	raw  string // text as written
	str  string // tokString: the unescaped value
	pos  int    // byte offset in the input
}

// lex splits a $filter expression into tokens.
func lex(text string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(text) {
		c := text[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(':
			toks = append(toks, token{kind: tokLParen, raw: "(", pos: i})
			i++
		case c == ')':
			toks = append(toks, token{kind: tokRParen, raw: ")", pos: i})
			i++
		case c == ',':
			toks = append(toks, token{kind: tokComma, raw: ",", pos: i})
			i++
		case c == ':':
			toks = append(toks, token{kind: tokColon, raw: ":", pos: i})
			i++
		case c == '/':
			toks = append(toks, token{kind: tokSlash, raw: "/", pos: i})
			i++
		case c == '\'':
			tok, next, err := lexString(text, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, tok)
			i = next
		case isGuidAt(text, i):
			toks = append(toks, token{kind: tokGuid, raw: text[i : i+36], pos: i})
			i += 36
		case isDigit(c) || (c == '-' && i+1 < len(text) && isDigit(text[i+1])):
			tok, err := lexNumberish(text, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, tok)
			i += len(tok.raw)
		case isIdentStart(c):
			j := i + 1
			for j < len(text) && isIdentPart(text[j]) {
				j++
			}
			toks = append(toks, token{kind: tokIdent, raw: text[i:j], pos: i})
			i = j
		default:
			return nil, errorf("Syntax error: character '%s' is not valid at position %d in '%s'.", charAt(text, i), i, text)
		}
	}
	toks = append(toks, token{kind: tokEOF, pos: len(text)})
	return toks, nil
}

func lexString(text string, start int) (token, int, error) {
	var b strings.Builder
	i := start + 1
	for i < len(text) {
		if text[i] == '\'' {
			if i+1 < len(text) && text[i+1] == '\'' {
				b.WriteByte('\'')
				i += 2
				continue
			}
			return token{kind: tokString, raw: text[start : i+1], str: b.String(), pos: start}, i + 1, nil
		}
		b.WriteByte(text[i])
		i++
	}
	return token{}, 0, errorf("There is an unterminated string literal at position %d in '%s'.", start, text)
}

// lexNumberish reads a number or an unquoted date/time literal such as
// 2019-11-22T00:00:00Z, 2021-01-26T20:33:57.7220239Z or 2018-08-01Z (all
// three appear in Microsoft's examples).
func lexNumberish(text string, start int) (token, error) {
	j := start + 1
	for j < len(text) && isNumberishPart(text[j]) {
		j++
	}
	raw := text[start:j]
	if looksLikeDate(raw) {
		if _, ok := parseDateTime(raw); !ok {
			return token{}, errorf("Unrecognized 'Edm.DateTimeOffset' literal '%s' at '%d' in '%s'.", raw, start, text)
		}
		return token{kind: tokDateTime, raw: raw, pos: start}, nil
	}
	if !isNumber(raw) {
		return token{}, errorf("Syntax error: '%s' at position %d is not a valid literal in '%s'.", raw, start, text)
	}
	return token{kind: tokNumber, raw: raw, pos: start}, nil
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isHex(c byte) bool        { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') }
func isIdentStart(c byte) bool { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isIdentPart(c byte) bool  { return isIdentStart(c) || isDigit(c) }
func isNumberishPart(c byte) bool {
	return isIdentPart(c) || c == '.' || c == ':' || c == '+' || c == '-'
}

func charAt(text string, i int) string {
	for j := range text[i:] {
		if j > 0 {
			return text[i : i+j]
		}
	}
	return text[i:]
}

// isGuidAt reports whether an unquoted GUID literal (8-4-4-4-12 hex digits)
// starts at i and is not followed by more identifier characters.
func isGuidAt(text string, i int) bool {
	if len(text)-i < 36 {
		return false
	}
	for k := range 36 {
		c := text[i+k]
		switch k {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return i+36 == len(text) || !isNumberishPart(text[i+36])
}

func looksLikeDate(s string) bool {
	return len(s) >= 10 && isDigit(s[0]) && isDigit(s[1]) && isDigit(s[2]) && isDigit(s[3]) &&
		s[4] == '-' && isDigit(s[5]) && isDigit(s[6]) && s[7] == '-' && isDigit(s[8]) && isDigit(s[9])
}

// isNumber accepts -?digits[.digits][e[+-]digits].
func isNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	d := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == d {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		d = i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d = i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == d {
			return false
		}
	}
	return i == len(s)
}

var dateTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05.999999999", // no zone: taken as UTC
	"2006-01-02T15:04",
	"2006-01-02Z07:00", // 2018-08-01Z, as in Microsoft's own example
	"2006-01-02",
}

// parseDateTime parses the date/time forms MDE accepts in filters and
// function arguments. A value without a zone is UTC.
func parseDateTime(s string) (time.Time, bool) {
	for _, layout := range dateTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// ParseDateTime parses a date/time literal the way $filter does; the
// emulator uses it for function-style path parameters such as
// findbyip(ip='...',timestamp=2024-01-01T00:00:00Z).
func ParseDateTime(s string) (time.Time, error) {
	t, ok := parseDateTime(s)
	if !ok {
		return time.Time{}, fmt.Errorf("odata: %q is not a date/time literal", s)
	}
	return t, nil
}
