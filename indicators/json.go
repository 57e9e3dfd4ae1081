package indicators

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/mdebridge/mdebridge"
)

// maxFile bounds what is read of an indicator file.
const maxFile = 256 << 20

// readOnlyFields are fields of MDE's indicator objects that a submission does
// not carry: a file exported by `indicators list -o json` imports as is.
var readOnlyFields = map[string]bool{
	"id": true, "createdby": true, "createdbydisplayname": true, "createdbysource": true, "creationtimedatetimeutc": true,
	"lastupdatetime": true, "lastupdatedby": true, "rbacgroupids": true, "source": true, "sourcetype": true,
	"bypassdurationhours": true, "notificationid": true, "notificationbody": true, "version": true,
	"historicaldetection": true, "lookbackperiod": true, "additionalinfo": true, "externalid": true, "certificateinfo": true,
}

// lines maps byte offsets to 1-based line numbers.
type lines []int

func newLines(data []byte) lines {
	var l lines
	for i, b := range data {
		if b == '\n' {
			l = append(l, i)
		}
	}
	return l
}

func (l lines) at(offset int64) int {
	return sort.SearchInts(l, int(offset)) + 1
}

// parseJSON reads a JSON array of indicator objects, an object holding one
// under "Indicators" (an import request) or "value" (a list response), or
// objects one after another (JSON Lines). A STIX bundle is handed to the
// STIX reader.
func parseJSON(r io.Reader, opts Options) (*Result, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFile))
	if err != nil {
		return nil, err
	}
	ln := newLines(data)
	c := newCollector(opts)
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("the JSON file is empty")
	}
	item := func(offset int64, raw json.RawMessage) {
		// The decoder's offset is where the previous value ended: skip the
		// separators to the line the item starts on.
		for offset < int64(len(data)) && bytes.IndexByte([]byte(" \t\r\n,"), data[offset]) >= 0 {
			offset++
		}
		line := ln.at(offset)
		in, alertSet, err := jsonIndicator(raw)
		if err != nil {
			c.res.Entries++
			c.problem(line, in.IndicatorValue, "%v", err)
			return
		}
		c.add(line, in, alertSet)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	switch trimmed[0] {
	case '[':
		dec.Token()
		if err := streamItems(dec, item); err != nil {
			return nil, fmt.Errorf("JSON line %d: %w", ln.at(dec.InputOffset()), err)
		}
		return c.res, nil
	case '{':
		kind, err := scanWrapper(dec, item)
		if err != nil {
			return nil, fmt.Errorf("JSON line %d: %w", ln.at(dec.InputOffset()), err)
		}
		switch kind {
		case "bundle":
			return parseSTIX(bytes.NewReader(data), opts)
		case "list":
			return c.res, nil
		}
		// Objects one after another.
		dec = json.NewDecoder(bytes.NewReader(data))
		for {
			off := dec.InputOffset()
			var raw json.RawMessage
			err := dec.Decode(&raw)
			if errors.Is(err, io.EOF) {
				return c.res, nil
			}
			if err != nil {
				return nil, fmt.Errorf("JSON line %d: %w", ln.at(off), err)
			}
			item(off, raw)
		}
	}
	return nil, fmt.Errorf("JSON line 1: expected an array or objects of indicators, found %q", trimmed[:1])
}

// streamItems hands each element of the array whose '[' was just read to item.
func streamItems(dec *json.Decoder, item func(int64, json.RawMessage)) error {
	for dec.More() {
		off := dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		item(off, raw)
	}
	_, err := dec.Token() // ']'
	return err
}

// scanWrapper reads the first object: if it holds a list of indicators
// under Indicators, value or indicators, those are handed to item and kind
// is "list"; a STIX bundle gives "bundle"; anything else "" (the object is
// itself an indicator).
func scanWrapper(dec *json.Decoder, item func(int64, json.RawMessage)) (kind string, err error) {
	if _, err := dec.Token(); err != nil {
		return "", err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", err
		}
		key, _ := tok.(string)
		switch strings.ToLower(key) {
		case "indicators", "value":
			t, err := dec.Token()
			if err != nil {
				return "", err
			}
			if d, ok := t.(json.Delim); !ok || d != '[' {
				return "", nil // a value that is not a list: an indicator field
			}
			if err := streamItems(dec, item); err != nil {
				return "", err
			}
			kind = "list"
		case "type":
			var v any
			if err := dec.Decode(&v); err != nil {
				return "", err
			}
			if v == "bundle" {
				return "bundle", nil
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", err
			}
		}
	}
	return kind, nil
}

// jsonIndicator reads one indicator object. Keys are MDE's field names,
// matched without case; read-only fields of MDE's own objects are ignored.
func jsonIndicator(raw json.RawMessage) (in mdebridge.Indicator, alertSet bool, err error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return in, false, fmt.Errorf("not a JSON object: %v", err)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	str := func(k string, v json.RawMessage) (string, error) {
		if string(v) == "null" {
			return "", nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", fmt.Errorf("%s is not a string", k)
		}
		return strings.TrimSpace(s), nil
	}
	for _, k := range keys {
		v := obj[k]
		norm := normalizeHeader(k)
		if readOnlyFields[norm] {
			continue
		}
		field, ok := csvColumns[norm]
		if !ok {
			return in, false, fmt.Errorf("unknown field %q", k)
		}
		if field == "" {
			continue // a field MDE's API has no use for (category, mitreTechniques)
		}
		switch field {
		case "groups":
			if len(v) > 0 && v[0] == '[' {
				if err := json.Unmarshal(v, &in.RBACGroupNames); err != nil {
					return in, false, fmt.Errorf("%s is not a list of names", k)
				}
				continue
			}
		case "generateAlert":
			var b bool
			if json.Unmarshal(v, &b) != nil {
				s, _ := str(k, v)
				pb, perr := strconv.ParseBool(s)
				if perr != nil {
					return in, false, fmt.Errorf("%s is not true or false", k)
				}
				b = pb
			}
			in.GenerateAlert, alertSet = b, true
			continue
		}
		s, err := str(k, v)
		if err != nil {
			return in, false, err
		}
		if s == "" {
			continue
		}
		switch field {
		case "value":
			in.IndicatorValue = s
		case "type":
			in.IndicatorType = s
		case "action":
			in.Action = s
		case "title":
			in.Title = s
		case "description":
			in.Description = s
		case "severity":
			in.Severity = s
		case "recommendedActions":
			in.RecommendedActions = s
		case "application":
			in.Application = s
		case "educateUrl":
			in.EducateURL = s
		case "groups":
			for g := range strings.SplitSeq(s, ",") {
				if g = strings.TrimSpace(g); g != "" {
					in.RBACGroupNames = append(in.RBACGroupNames, g)
				}
			}
		case "expiration":
			t, err := parseTime(s)
			if err != nil {
				return in, false, err
			}
			in.ExpirationTime = t
		}
	}
	return in, alertSet, nil
}
