package indicators

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/mdebridge/mdebridge"
)

// STIX 2.1 bundles: every object of type "indicator" with a STIX pattern
// becomes one MDE indicator per value its pattern names. Patterns are read
// by a small parser of the part of STIX patterning that MDE indicators can
// express: comparisons with = or IN on file hashes, IPv4/IPv6 addresses,
// domain names, URLs and certificate thumbprints, joined by OR. AND, other
// operators and qualifiers (WITHIN, START … STOP) cannot be expressed as
// MDE indicators and are reported, not dropped silently.

type stixObject struct {
	Type           string          `json:"type"`
	ID             string          `json:"id"`
	Name           string          `json:"name"`
	Description    string          `json:"description"`
	Pattern        string          `json:"pattern"`
	PatternType    string          `json:"pattern_type"`
	ValidUntil     string          `json:"valid_until"`
	Revoked        bool            `json:"revoked"`
	Confidence     *int            `json:"confidence"`
	IndicatorTypes []string        `json:"indicator_types"`
	Labels         []string        `json:"labels"`
	Raw            json.RawMessage `json:"-"`
}

func parseSTIX(r io.Reader, opts Options) (*Result, error) {
	var bundle struct {
		Type    string            `json:"type"`
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.NewDecoder(io.LimitReader(r, maxFile)).Decode(&bundle); err != nil {
		return nil, fmt.Errorf("STIX bundle: %w", err)
	}
	if bundle.Type != "bundle" {
		return nil, fmt.Errorf("STIX: the file is not a bundle (type %q)", bundle.Type)
	}
	c := newCollector(opts)
	for i, raw := range bundle.Objects {
		n := i + 1
		var o stixObject
		if err := json.Unmarshal(raw, &o); err != nil {
			c.res.Entries++
			c.problem(n, "", "object %d: %v", n, err)
			continue
		}
		if o.Type != "indicator" {
			c.res.Skipped++
			continue
		}
		if o.PatternType != "" && o.PatternType != "stix" {
			c.res.Entries++
			c.problem(n, "", "%s: pattern type %q is not a STIX pattern", o.ID, o.PatternType)
			continue
		}
		if o.Revoked {
			c.res.Entries++
			c.problem(n, "", "%s is revoked", o.ID)
			continue
		}
		values, err := ParsePattern(o.Pattern)
		if err != nil {
			c.res.Entries++
			c.problem(n, "", "%s: %v", o.ID, err)
			continue
		}
		for _, v := range values {
			in := mdebridge.Indicator{IndicatorValue: v.Value, IndicatorType: v.Type, Title: o.Name, Description: o.Description, ExternalID: o.ID}
			if in.Title == "" {
				in.Title = "STIX " + o.ID
			}
			if o.ValidUntil != "" {
				t, err := parseTime(o.ValidUntil)
				if err != nil {
					c.res.Entries++
					c.problem(n, v.Value, "%s: valid_until: %v", o.ID, err)
					continue
				}
				in.ExpirationTime = t
			}
			if o.Confidence != nil {
				in.Severity = confidenceSeverity(*o.Confidence)
			}
			for _, t := range append(o.IndicatorTypes, o.Labels...) {
				if t == "benign" {
					in.Action = "Allowed"
				}
			}
			c.add(n, in, false)
		}
	}
	return c.res, nil
}

// confidenceSeverity maps a STIX confidence (0–100) to an MDE severity.
func confidenceSeverity(c int) string {
	switch {
	case c >= 85:
		return "High"
	case c >= 50:
		return "Medium"
	case c >= 15:
		return "Low"
	}
	return "Informational"
}

// PatternValue is one value a STIX pattern names, with its MDE type.
type PatternValue struct {
	Type  string
	Value string
}

// stixPaths maps object paths (lower case, quotes removed) to MDE types.
var stixPaths = map[string]string{
	"file:hashes.sha-256":           mdebridge.IndicatorFileSha256,
	"file:hashes.sha256":            mdebridge.IndicatorFileSha256,
	"file:hashes.sha-1":             mdebridge.IndicatorFileSha1,
	"file:hashes.sha1":              mdebridge.IndicatorFileSha1,
	"file:hashes.md5":               mdebridge.IndicatorFileMd5,
	"ipv4-addr:value":               mdebridge.IndicatorIPAddress,
	"ipv6-addr:value":               mdebridge.IndicatorIPAddress,
	"domain-name:value":             mdebridge.IndicatorDomainName,
	"url:value":                     mdebridge.IndicatorURL,
	"x509-certificate:hashes.sha-1": mdebridge.IndicatorCertificate,
	"x509-certificate:hashes.sha1":  mdebridge.IndicatorCertificate,
}

// ParsePattern reads a STIX 2.1 pattern and returns the values it names,
// when the pattern is a disjunction of equality (or IN) tests on paths MDE
// indicators can express.
func ParsePattern(pattern string) ([]PatternValue, error) {
	toks, err := stixLex(pattern)
	if err != nil {
		return nil, err
	}
	p := &stixParser{toks: toks}
	vals, err := p.observations()
	if err != nil {
		return nil, err
	}
	if p.peek().kind != tEOF {
		return nil, fmt.Errorf("unexpected %s in the pattern", p.peek())
	}
	return vals, nil
}

type stixTokKind int

const (
	tEOF stixTokKind = iota
	tLBracket
	tRBracket
	tLParen
	tRParen
	tComma
	tEq
	tOp   // any other comparison operator
	tWord // identifiers, object paths, keywords
	tString
	tOther // numbers, timestamps, booleans
)

type stixTok struct {
	kind stixTokKind
	text string
}

func (t stixTok) String() string {
	if t.kind == tEOF {
		return "end of pattern"
	}
	return fmt.Sprintf("%q", t.text)
}

func stixLex(s string) ([]stixTok, error) {
	var toks []stixTok
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '[':
			toks, i = append(toks, stixTok{tLBracket, "["}), i+1
		case c == ']':
			toks, i = append(toks, stixTok{tRBracket, "]"}), i+1
		case c == '(':
			toks, i = append(toks, stixTok{tLParen, "("}), i+1
		case c == ')':
			toks, i = append(toks, stixTok{tRParen, ")"}), i+1
		case c == ',':
			toks, i = append(toks, stixTok{tComma, ","}), i+1
		case c == '=':
			toks, i = append(toks, stixTok{tEq, "="}), i+1
		case c == '!' || c == '<' || c == '>':
			j := i + 1
			if j < len(s) && s[j] == '=' {
				j++
			}
			toks, i = append(toks, stixTok{tOp, s[i:j]}), j
		case c == '\'':
			str, n, err := stixString(s[i:])
			if err != nil {
				return nil, err
			}
			toks, i = append(toks, stixTok{tString, str}), i+n
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r[](),=!<>", rune(s[j])) {
				if s[j] == '\'' {
					// A quoted path component: hashes.'SHA-256'.
					_, n, err := stixString(s[j:])
					if err != nil {
						return nil, err
					}
					j += n
					continue
				}
				j++
			}
			word := s[i:j]
			kind := tWord
			if word[0] >= '0' && word[0] <= '9' || word[0] == '-' || strings.HasPrefix(word, "t'") {
				kind = tOther
			}
			toks, i = append(toks, stixTok{kind, word}), j
		}
	}
	return append(toks, stixTok{kind: tEOF}), nil
}

// stixString reads a single-quoted string at the start of s (\' and \\
// escaped) and returns its value and length.
func stixString(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 >= len(s) || (s[i+1] != '\'' && s[i+1] != '\\') {
				return "", 0, errors.New("bad escape in a quoted string")
			}
			b.WriteByte(s[i+1])
			i++
		case '\'':
			return b.String(), i + 1, nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, errors.New("unterminated quoted string")
}

type stixParser struct {
	toks []stixTok
	i    int
}

func (p *stixParser) peek() stixTok { return p.toks[p.i] }
func (p *stixParser) next() stixTok {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *stixParser) keyword(k string) bool {
	t := p.peek()
	return t.kind == tWord && strings.EqualFold(t.text, k)
}

// observations: observation (OR observation)*.
func (p *stixParser) observations() ([]PatternValue, error) {
	var out []PatternValue
	for {
		v, err := p.observation()
		if err != nil {
			return nil, err
		}
		out = append(out, v...)
		switch {
		case p.keyword("OR"):
			p.next()
		case p.keyword("AND"), p.keyword("FOLLOWEDBY"):
			return nil, fmt.Errorf("%s between observations cannot be expressed as MDE indicators", strings.ToUpper(p.peek().text))
		default:
			return out, nil
		}
	}
}

func (p *stixParser) observation() ([]PatternValue, error) {
	switch t := p.next(); t.kind {
	case tLParen:
		v, err := p.observations()
		if err != nil {
			return nil, err
		}
		if p.next().kind != tRParen {
			return nil, errors.New("missing ) in the pattern")
		}
		return v, p.noQualifier()
	case tLBracket:
		v, err := p.comparisons()
		if err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != tRBracket {
			return nil, fmt.Errorf("expected ], found %s", t)
		}
		return v, p.noQualifier()
	default:
		return nil, fmt.Errorf("expected [, found %s", t)
	}
}

func (p *stixParser) noQualifier() error {
	for _, q := range []string{"WITHIN", "REPEATS", "START"} {
		if p.keyword(q) {
			return fmt.Errorf("the qualifier %s cannot be expressed as MDE indicators", q)
		}
	}
	return nil
}

// comparisons: comparison (OR comparison)*; AND is refused.
func (p *stixParser) comparisons() ([]PatternValue, error) {
	var out []PatternValue
	for {
		v, err := p.comparison()
		if err != nil {
			return nil, err
		}
		out = append(out, v...)
		switch {
		case p.keyword("OR"):
			p.next()
		case p.keyword("AND"):
			return nil, errors.New("AND inside an observation cannot be expressed as MDE indicators (each indicator matches one value)")
		default:
			return out, nil
		}
	}
}

func (p *stixParser) comparison() ([]PatternValue, error) {
	if p.peek().kind == tLParen {
		p.next()
		v, err := p.comparisons()
		if err != nil {
			return nil, err
		}
		if p.next().kind != tRParen {
			return nil, errors.New("missing ) in the pattern")
		}
		return v, nil
	}
	path := p.next()
	if path.kind != tWord || !strings.Contains(path.text, ":") {
		return nil, fmt.Errorf("expected an object path such as file:hashes.'SHA-256', found %s", path)
	}
	key := strings.ToLower(strings.ReplaceAll(path.text, "'", ""))
	typ, ok := stixPaths[key]
	if !ok {
		return nil, fmt.Errorf("the object path %s has no MDE indicator type (supported: file hashes, IPv4/IPv6 addresses, domain names, URLs, certificate SHA-1)", path.text)
	}
	if p.keyword("NOT") {
		return nil, errors.New("NOT cannot be expressed as an MDE indicator")
	}
	var values []string
	switch op := p.next(); {
	case op.kind == tEq:
		v := p.next()
		if v.kind != tString {
			return nil, fmt.Errorf("expected a quoted value after =, found %s", v)
		}
		values = append(values, v.text)
	case op.kind == tWord && strings.EqualFold(op.text, "IN"):
		if p.next().kind != tLParen {
			return nil, errors.New("expected ( after IN")
		}
		for {
			v := p.next()
			if v.kind != tString {
				return nil, fmt.Errorf("expected a quoted value in the IN list, found %s", v)
			}
			values = append(values, v.text)
			if t := p.next(); t.kind == tRParen {
				break
			} else if t.kind != tComma {
				return nil, fmt.Errorf("expected , or ) in the IN list, found %s", t)
			}
		}
	default:
		return nil, fmt.Errorf("the operator %s cannot be expressed as an MDE indicator (only = and IN)", op)
	}
	out := make([]PatternValue, 0, len(values))
	for _, v := range values {
		if typ == mdebridge.IndicatorIPAddress {
			// STIX writes single addresses as /32 or /128 ranges too.
			if pre, err := netip.ParsePrefix(v); err == nil {
				if pre.Bits() != pre.Addr().BitLen() {
					return nil, fmt.Errorf("the range %s is not a single address (MDE takes no CIDR)", v)
				}
				v = pre.Addr().String()
			}
		}
		out = append(out, PatternValue{Type: typ, Value: v})
	}
	return out, nil
}
