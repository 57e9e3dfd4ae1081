package indicators

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
)

// csvColumns maps the header names a CSV file may use (MDE's own camelCase,
// the portal's import template, and common short forms; compared without
// case, spaces, dashes or underscores) to the field they fill.
var csvColumns = map[string]string{
	"indicatorvalue": "value", "value": "value", "indicator": "value", "ioc": "value",
	"indicatortype": "type", "type": "type",
	"action": "action",
	"title":  "title", "name": "title",
	"description":    "description",
	"severity":       "severity",
	"expirationtime": "expiration", "expiration": "expiration", "expires": "expiration", "validuntil": "expiration",
	"recommendedactions": "recommendedActions",
	"rbacgroupnames":     "groups", "rbacgroups": "groups", "groups": "groups",
	"generatealert": "generateAlert",
	"application":   "application",
	"educateurl":    "educateUrl",
	// Columns of the portal's template that the API has no field for.
	"category": "", "mitretechniques": "",
}

func normalizeHeader(h string) string {
	h = strings.TrimPrefix(h, "\ufeff") // a byte-order mark from spreadsheet exports
	return strings.ToLower(strings.NewReplacer(" ", "", "_", "", "-", "").Replace(strings.TrimSpace(h)))
}

// parseCSV reads a CSV file with a header row. Lines are numbered as in the
// file (the header is line 1).
func parseCSV(r io.Reader, opts Options) (*Result, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("the CSV file is empty: it needs a header row (indicatorValue, indicatorType, action, title, …)")
	}
	if err != nil {
		return nil, fmt.Errorf("CSV header: %w", err)
	}
	fields := make([]string, len(header))
	hasValue := false
	for i, h := range header {
		f, ok := csvColumns[normalizeHeader(h)]
		if !ok {
			return nil, fmt.Errorf("CSV line 1: unknown column %q (known: indicatorValue, indicatorType, action, title, description, severity, expirationTime, recommendedActions, rbacGroupNames, generateAlert, application, educateUrl)", h)
		}
		fields[i] = f
		hasValue = hasValue || f == "value"
	}
	if !hasValue {
		return nil, errors.New("CSV line 1: no indicatorValue column")
	}
	c := newCollector(opts)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			c.res.Entries++
			c.problem(pe.StartLine, "", "not valid CSV: %v", pe.Err)
			if errors.Is(pe.Err, csv.ErrQuote) || errors.Is(pe.Err, csv.ErrBareQuote) {
				continue
			}
			return nil, fmt.Errorf("CSV line %d: %w", pe.StartLine, err)
		}
		if err != nil {
			return nil, err
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		line, _ := cr.FieldPos(0)
		in, alertSet, perr := csvIndicator(fields, rec)
		if perr != nil {
			c.res.Entries++
			c.problem(line, in.IndicatorValue, "%v", perr)
			continue
		}
		c.add(line, in, alertSet)
	}
	return c.res, nil
}

func csvIndicator(fields, rec []string) (in mdebridge.Indicator, alertSet bool, err error) {
	if len(rec) > len(fields) {
		return in, false, fmt.Errorf("%d fields, the header has %d", len(rec), len(fields))
	}
	for i, v := range rec {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		switch fields[i] {
		case "value":
			in.IndicatorValue = v
		case "type":
			in.IndicatorType = v
		case "action":
			in.Action = v
		case "title":
			in.Title = v
		case "description":
			in.Description = v
		case "severity":
			in.Severity = v
		case "recommendedActions":
			in.RecommendedActions = v
		case "application":
			in.Application = v
		case "educateUrl":
			in.EducateURL = v
		case "groups":
			for g := range strings.FieldsFuncSeq(v, func(r rune) bool { return r == ';' || r == '|' || r == ',' }) {
				if g = strings.TrimSpace(g); g != "" {
					in.RBACGroupNames = append(in.RBACGroupNames, g)
				}
			}
		case "generateAlert":
			b, perr := strconv.ParseBool(v)
			if perr != nil {
				return in, false, fmt.Errorf("generateAlert %q is not true or false", v)
			}
			in.GenerateAlert, alertSet = b, true
		case "expiration":
			t, perr := parseTime(v)
			if perr != nil {
				return in, false, perr
			}
			in.ExpirationTime = t
		}
	}
	return in, alertSet, nil
}

// parseTime reads an expiration time: RFC 3339, or a date alone.
func parseTime(v string) (time.Time, error) {
	for _, l := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("expiration %q is not a date (like 2027-12-31 or 2027-12-31T00:00:00Z)", v)
}
