package mde

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// timeLayouts are the timestamp forms MDE sends: entity APIs use ISO 8601 UTC
// with a Z and 0–7 fractional digits; export APIs use a space and no zone
// ("2021-01-11 09:47:58.854", UTC implied); endOfSupportDate carries an offset.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02Z07:00",
	"2006-01-02",
}

// ParseTime parses any timestamp form MDE is known to send. A timestamp
// without a zone is UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("unrecognised timestamp %q", s)
}

// flexTime decodes any MDE timestamp, null or "" (zero).
type flexTime time.Time

func (t *flexTime) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*t = flexTime{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	if s == "" {
		*t = flexTime{}
		return nil
	}
	v, err := ParseTime(s)
	if err != nil {
		return err
	}
	*t = flexTime(v)
	return nil
}

// flexInt decodes a number that the docs call a string: rbacGroupId is a
// number in live payloads and a string in some examples. A string that is not
// a number decodes to 0.
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*n = 0
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			*n = 0
			return nil
		}
		// A non-numeric id (seen in synthetic payloads) is not worth losing
		// the page over; the raw JSON keeps it.
		v, _ := strconv.ParseInt(s, 10, 64)
		*n = flexInt(v)
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("number: %s", b)
	}
	*n = flexInt(v)
	return nil
}
