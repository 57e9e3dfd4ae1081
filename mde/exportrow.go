package mde

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mdebridge/mdebridge"
)

// The export records are decoded by hand rather than with encoding/json:
// a full export is millions of rows and decoding is on the ingest's
// critical path. The decoder is strict about JSON syntax, lenient about the
// records: key names match case-insensitively (the files' rows have been
// seen in PascalCase, the JSON API's in camelCase), numbers may come as
// strings, nulls are empty values, and fields it does not know are kept,
// verbatim, in the record's Extra object.

// rowDecoder decodes export records. It interns the strings that repeat
// from row to row (device ids, product names, versions), so a file of a
// million rows does not allocate them a million times. It is not safe for
// concurrent use.
type rowDecoder struct {
	intern  map[string]string
	scratch []byte
	extra   []byte
}

func newRowDecoder() *rowDecoder { return &rowDecoder{intern: make(map[string]string, 1024)} }

// maxInterned bounds the intern table; past it, strings are allocated.
const maxInterned = 1 << 17

func (d *rowDecoder) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := d.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(d.intern) < maxInterned {
		d.intern[s] = s
	}
	return s
}

// jsonScanner reads one JSON value at a time from a byte slice.
type jsonScanner struct {
	b []byte
	i int
}

var errSyntax = errors.New("invalid JSON")

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jsonScanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// null consumes a null if one is next.
func (s *jsonScanner) null() bool {
	return s.peek() == 'n' && s.literal("null")
}

// str reads a string. The result aliases the input when it has no escapes,
// else scratch (reused): either way it is valid until the next call.
func (s *jsonScanner) str(scratch *[]byte) ([]byte, error) {
	if s.peek() != '"' {
		return nil, errSyntax
	}
	s.i++
	start := s.i
	// Most strings are plain ASCII: find the closing quote at once and
	// check what lies before it.
	if q := bytes.IndexByte(s.b[start:], '"'); q >= 0 {
		seg := s.b[start : start+q]
		plain := true
		for _, c := range seg {
			if notPlain[c] {
				plain = false
				break
			}
		}
		if plain {
			s.i = start + q + 1
			return seg, nil
		}
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			out := s.b[start:s.i]
			s.i++
			return out, nil
		case c == '\\':
			return s.strEscaped(start, scratch)
		case c < 0x20:
			return nil, errSyntax
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size == 1 {
				return s.strEscaped(start, scratch) // replace invalid UTF-8 as encoding/json does
			}
			s.i += size
		default:
			s.i++
		}
	}
	return nil, errSyntax
}

// notPlain marks the bytes the fast path of str leaves to the slow one:
// control characters, the backslash and non-ASCII.
var notPlain = func() (t [256]bool) {
	for c := range t {
		t[c] = c < 0x20 || c == '\\' || c >= utf8.RuneSelf
	}
	return t
}()

func (s *jsonScanner) strEscaped(start int, scratch *[]byte) ([]byte, error) {
	out := append((*scratch)[:0], s.b[start:s.i]...)
	defer func() { *scratch = out }()
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return out, nil
		case c < 0x20:
			return nil, errSyntax
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return nil, errSyntax
			}
			e := s.b[s.i+1]
			s.i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := s.hex4()
				if !ok {
					return nil, errSyntax
				}
				if utf16.IsSurrogate(r) {
					r2 := utf8.RuneError
					save := s.i
					if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
						s.i += 2
						if x, ok := s.hex4(); ok {
							if dec := utf16.DecodeRune(r, x); dec != utf8.RuneError {
								r2 = dec
							} else {
								s.i = save
							}
						} else {
							return nil, errSyntax
						}
					}
					r = r2
				}
				out = utf8.AppendRune(out, r)
			default:
				return nil, errSyntax
			}
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, s.b[s.i:s.i+size]...)
			}
			s.i += size
		default:
			out = append(out, c)
			s.i++
		}
	}
	return nil, errSyntax
}

func (s *jsonScanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}

// number reads a JSON number's text.
func (s *jsonScanner) number() ([]byte, error) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.i < len(s.b) && s.b[s.i] == '0' {
		s.i++
	} else if digits() == 0 {
		return nil, errSyntax
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return nil, errSyntax
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return nil, errSyntax
		}
	}
	return s.b[start:s.i], nil
}

// skip reads any value and returns its text.
func (s *jsonScanner) skip(depth int) ([]byte, error) {
	if depth > 100 {
		return nil, errors.New("JSON nested too deeply")
	}
	c := s.peek()
	start := s.i
	var err error
	switch c {
	case '"':
		var scratch []byte
		_, err = s.str(&scratch)
	case '{':
		s.i++
		if s.peek() == '}' {
			s.i++
			break
		}
		for {
			var scratch []byte
			if _, err = s.str(&scratch); err != nil {
				break
			}
			if s.peek() != ':' {
				err = errSyntax
				break
			}
			s.i++
			if _, err = s.skip(depth + 1); err != nil {
				break
			}
			if s.peek() == ',' {
				s.i++
				continue
			}
			if s.peek() == '}' {
				s.i++
				break
			}
			err = errSyntax
			break
		}
	case '[':
		s.i++
		if s.peek() == ']' {
			s.i++
			break
		}
		for {
			if _, err = s.skip(depth + 1); err != nil {
				break
			}
			if s.peek() == ',' {
				s.i++
				continue
			}
			if s.peek() == ']' {
				s.i++
				break
			}
			err = errSyntax
			break
		}
	case 't':
		if !s.literal("true") {
			err = errSyntax
		}
	case 'f':
		if !s.literal("false") {
			err = errSyntax
		}
	case 'n':
		if !s.literal("null") {
			err = errSyntax
		}
	default:
		_, err = s.number()
	}
	if err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

// object calls field for each member of an object; field must consume the
// value (or return errSkip to have it kept by the caller).
func (s *jsonScanner) object(scratch *[]byte, field func(key []byte) error) error {
	if s.peek() != '{' {
		return errors.New("a record must be a JSON object")
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return s.end()
	}
	for {
		key, err := s.str(scratch)
		if err != nil {
			return err
		}
		if s.peek() != ':' {
			return errSyntax
		}
		s.i++
		if err := field(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
			continue
		case '}':
			s.i++
			return s.end()
		}
		return errSyntax
	}
}

// end checks that only whitespace follows the record.
func (s *jsonScanner) end() error {
	s.ws()
	if s.i != len(s.b) {
		return errors.New("data after the record")
	}
	return nil
}

// lowerKey lower-cases a key into buf (ASCII only; longer keys are not ours).
func lowerKey(buf *[48]byte, key []byte) []byte {
	if len(key) > len(buf) {
		return nil
	}
	for i, c := range key {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(key)]
}

// fieldError names the field a value did not fit.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return fmt.Sprintf("field %s: %v", e.field, e.err) }
func (e *fieldError) Unwrap() error { return e.err }

// value readers: each consumes one value of the scanner.

func (d *rowDecoder) strValue(s *jsonScanner) (string, error) {
	if s.null() {
		return "", nil
	}
	switch c := s.peek(); {
	case c == '"':
		b, err := s.str(&d.scratch)
		if err != nil {
			return "", err
		}
		return d.str(b), nil
	case c == '-' || c >= '0' && c <= '9':
		b, err := s.number() // a number where a string was expected: keep its text
		if err != nil {
			return "", err
		}
		return d.str(b), nil
	}
	return "", errors.New("not a string")
}

func (d *rowDecoder) strsValue(s *jsonScanner) ([]string, error) {
	if s.null() {
		return nil, nil
	}
	if s.peek() != '[' {
		return nil, errors.New("not an array")
	}
	s.i++
	var out []string
	if s.peek() == ']' {
		s.i++
		return []string{}, nil
	}
	for {
		v, err := d.strValue(s)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		switch s.peek() {
		case ',':
			s.i++
			continue
		case ']':
			s.i++
			return out, nil
		}
		return nil, errSyntax
	}
}

func (d *rowDecoder) floatValue(s *jsonScanner) (*float64, error) {
	if s.null() {
		return nil, nil
	}
	var text []byte
	var err error
	if s.peek() == '"' {
		if text, err = s.str(&d.scratch); err != nil {
			return nil, err
		}
		if len(text) == 0 {
			return nil, nil
		}
	} else if text, err = s.number(); err != nil {
		return nil, err
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		return nil, fmt.Errorf("not a number: %q", text)
	}
	return &f, nil
}

func (d *rowDecoder) intValue(s *jsonScanner) (int64, error) {
	f, err := d.floatValue(s)
	if err != nil || f == nil {
		return 0, err
	}
	return int64(*f), nil
}

func (d *rowDecoder) boolValue(s *jsonScanner) (*bool, error) {
	if s.null() {
		return nil, nil
	}
	var v bool
	switch {
	case s.peek() == 't' && s.literal("true"):
		v = true
	case s.peek() == 'f' && s.literal("false"):
	case s.peek() == '"':
		text, err := s.str(&d.scratch)
		if err != nil {
			return nil, err
		}
		if v, err = strconv.ParseBool(string(text)); err != nil {
			return nil, fmt.Errorf("not a boolean: %q", text)
		}
	default:
		return nil, errors.New("not a boolean")
	}
	return &v, nil
}

func (d *rowDecoder) timeValue(s *jsonScanner) (time.Time, error) {
	if s.null() {
		return time.Time{}, nil
	}
	text, err := s.str(&d.scratch)
	if err != nil {
		return time.Time{}, err
	}
	if len(text) == 0 {
		return time.Time{}, nil
	}
	if t, ok := parseExportTime(text); ok {
		return t, nil
	}
	return ParseTime(string(text))
}

// parseExportTime is the fast path for the exports' "2006-01-02 15:04:05"
// (optionally with a fraction), UTC implied.
func parseExportTime(b []byte) (time.Time, bool) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || (b[10] != ' ' && b[10] != 'T') || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	num := func(p []byte) (int, bool) {
		n := 0
		for _, c := range p {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(b[0:4])
	mo, ok2 := num(b[5:7])
	dd, ok3 := num(b[8:10])
	h, ok4 := num(b[11:13])
	mi, ok5 := num(b[14:16])
	sec, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || dd < 1 || dd > 31 || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	nanos := 0
	rest := b[19:]
	if len(rest) > 0 {
		if rest[0] != '.' || len(rest) < 2 || len(rest) > 10 {
			return time.Time{}, false
		}
		frac, ok := num(rest[1:])
		if !ok {
			return time.Time{}, false
		}
		for range 10 - len(rest) {
			frac *= 10
		}
		nanos = frac
	}
	t := time.Date(y, time.Month(mo), dd, h, mi, sec, nanos, time.UTC)
	if t.Day() != dd { // 31 February
		return time.Time{}, false
	}
	return t, true
}

// keepExtra appends an unknown member to the record's extra object.
func (d *rowDecoder) keepExtra(s *jsonScanner, key []byte) error {
	raw, err := s.skip(0)
	if err != nil {
		return err
	}
	if len(d.extra) == 0 {
		d.extra = append(d.extra, '{')
	} else {
		d.extra = append(d.extra, ',')
	}
	d.extra = appendJSONString(d.extra, key)
	d.extra = append(d.extra, ':')
	d.extra = append(d.extra, raw...)
	return nil
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func (d *rowDecoder) takeExtra() []byte {
	if len(d.extra) == 0 {
		return nil
	}
	out := append(d.extra, '}')
	d.extra = nil
	return out
}

// record decodes one export record: field reads the value of a member
// whose lower-cased name it knows and reports whether it did; the others
// are kept in the record's extra object.
func (d *rowDecoder) record(line []byte, field func(s *jsonScanner, key []byte) (bool, error)) (extra []byte, err error) {
	d.extra = d.extra[:0]
	s := &jsonScanner{b: line}
	var kbuf [48]byte
	var keyScratch []byte
	err = s.object(&keyScratch, func(key []byte) error {
		known, err := field(s, lowerKey(&kbuf, key))
		switch {
		case err != nil:
			return &fieldError{field: string(key), err: err}
		case !known:
			return d.keepExtra(s, key)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d.takeExtra(), nil
}

// vulnerability decodes one AssetVulnerability (or DeltaAssetVulnerability)
// record.
func (d *rowDecoder) vulnerability(line []byte, r *mdebridge.MachineVulnerability) error {
	*r = mdebridge.MachineVulnerability{}
	extra, err := d.record(line, func(s *jsonScanner, key []byte) (bool, error) {
		var err error
		switch string(key) {
		case "id":
			var b []byte
			if !s.null() {
				if b, err = s.str(&d.scratch); err == nil {
					r.ID = string(b)
				}
			}
		case "deviceid":
			r.DeviceID, err = d.strValue(s)
		case "devicename":
			r.DeviceName, err = d.strValue(s)
		case "rbacgroupname":
			r.RBACGroupName, err = d.strValue(s)
		case "rbacgroupid":
			r.RBACGroupID, err = d.intValue(s)
		case "osplatform":
			r.OSPlatform, err = d.strValue(s)
		case "osversion":
			r.OSVersion, err = d.strValue(s)
		case "osarchitecture":
			r.OSArchitecture, err = d.strValue(s)
		case "softwarevendor":
			r.SoftwareVendor, err = d.strValue(s)
		case "softwarename":
			r.SoftwareName, err = d.strValue(s)
		case "softwareversion":
			r.SoftwareVersion, err = d.strValue(s)
		case "cveid":
			r.CVEID, err = d.strValue(s)
		case "vulnerabilityseveritylevel":
			r.Severity, err = d.strValue(s)
		case "cvssscore":
			r.CVSSScore, err = d.floatValue(s)
		case "recommendedsecurityupdate":
			r.RecommendedSecurityUpdate, err = d.strValue(s)
		case "recommendedsecurityupdateid":
			r.RecommendedSecurityUpdateID, err = d.strValue(s)
		case "recommendedsecurityupdateurl":
			r.RecommendedSecurityUpdateURL, err = d.strValue(s)
		case "diskpaths":
			r.DiskPaths, err = d.strsValue(s)
		case "registrypaths":
			r.RegistryPaths, err = d.strsValue(s)
		case "firstseentimestamp":
			r.FirstSeen, err = d.timeValue(s)
		case "lastseentimestamp":
			r.LastSeen, err = d.timeValue(s)
		case "exploitabilitylevel":
			r.ExploitabilityLevel, err = d.strValue(s)
		case "recommendationreference":
			r.RecommendationReference, err = d.strValue(s)
		case "securityupdateavailable":
			r.SecurityUpdateAvailable, err = d.boolValue(s)
		case "status":
			r.Status, err = d.strValue(s)
		case "eventtimestamp":
			r.EventTimestamp, err = d.timeValue(s)
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return err
	}
	r.Extra = extra
	if r.DeviceID == "" {
		return errors.New("record without a deviceId")
	}
	return nil
}

// software decodes one AssetSoftware record.
func (d *rowDecoder) software(line []byte, r *mdebridge.SoftwareInstall) error {
	*r = mdebridge.SoftwareInstall{}
	extra, err := d.record(line, func(s *jsonScanner, key []byte) (bool, error) {
		var err error
		switch string(key) {
		case "deviceid":
			r.DeviceID, err = d.strValue(s)
		case "devicename":
			r.DeviceName, err = d.strValue(s)
		case "rbacgroupname":
			r.RBACGroupName, err = d.strValue(s)
		case "osplatform":
			r.OSPlatform, err = d.strValue(s)
		case "softwarevendor":
			r.SoftwareVendor, err = d.strValue(s)
		case "softwarename":
			r.SoftwareName, err = d.strValue(s)
		case "softwareversion":
			r.SoftwareVersion, err = d.strValue(s)
		case "numberofweaknesses":
			var n int64
			n, err = d.intValue(s)
			r.NumberOfWeaknesses = int(n)
		case "diskpaths":
			r.DiskPaths, err = d.strsValue(s)
		case "registrypaths":
			r.RegistryPaths, err = d.strsValue(s)
		case "softwarefirstseentimestamp":
			r.FirstSeen, err = d.timeValue(s)
		case "endofsupportstatus":
			r.EndOfSupportStatus, err = d.strValue(s)
		case "endofsupportdate":
			r.EndOfSupportDate, err = d.timeValue(s)
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return err
	}
	r.Extra = extra
	if r.DeviceID == "" {
		return errors.New("record without a deviceId")
	}
	return nil
}

// DecodeVulnerabilityRow decodes one vulnerability export record
// (AssetVulnerability or DeltaAssetVulnerability, either casing).
func DecodeVulnerabilityRow(b []byte) (mdebridge.MachineVulnerability, error) {
	var r mdebridge.MachineVulnerability
	err := newRowDecoder().vulnerability(b, &r)
	return r, err
}

// DecodeSoftwareRow decodes one software inventory export record.
func DecodeSoftwareRow(b []byte) (mdebridge.SoftwareInstall, error) {
	var r mdebridge.SoftwareInstall
	err := newRowDecoder().software(b, &r)
	return r, err
}
