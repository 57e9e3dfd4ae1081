package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge/emulator/odata"
)

// The wire form of an entity is a table of jsonFields in the live key
// order: one table serves the JSON encoder, the strict decoder (tenant
// files, fixtures) and the OData schema ($filter, $orderby, $select).

// jsonField ties one JSON property of T to its schema entry, encoder and
// decoder; a table of them, in the live key order, is an entity's wire form.
type jsonField[T any] struct {
	name       string
	typ        odata.Type
	filterable bool // documented as filterable (mde-api.md §2.3)
	get        func(T) odata.Value
	enc        func([]byte, T) []byte
	dec        func(T, json.RawMessage) error
}

func strF[T any](name string, filterable bool, p func(T) *string) jsonField[T] {
	return jsonField[T]{
		name: name, typ: odata.String, filterable: filterable,
		get: func(x T) odata.Value { return odata.Value{Str: *p(x)} },
		enc: func(b []byte, x T) []byte { return appendString(b, *p(x)) },
		dec: func(x T, raw json.RawMessage) error {
			var s *string
			if err := json.Unmarshal(raw, &s); err != nil {
				return err
			}
			if s != nil {
				*p(x) = *s
			}
			return nil
		},
	}
}

func optStrF[T any](name string, filterable bool, p func(T) *opt[string]) jsonField[T] {
	return jsonField[T]{
		name: name, typ: odata.String, filterable: filterable,
		get: func(x T) odata.Value { return optValue(*p(x)) },
		enc: func(b []byte, x T) []byte { return appendOptString(b, *p(x)) },
		dec: func(x T, raw json.RawMessage) error { return decodeOpt(raw, p(x)) },
	}
}

func boolF[T any](name string, p func(T) *bool) jsonField[T] {
	return jsonField[T]{
		name: name, typ: odata.Bool,
		get: func(x T) odata.Value { return odata.Value{Bool: *p(x)} },
		enc: func(b []byte, x T) []byte {
			if *p(x) {
				return append(b, "true"...)
			}
			return append(b, "false"...)
		},
		dec: func(x T, raw json.RawMessage) error {
			var v *bool
			if err := json.Unmarshal(raw, &v); err != nil {
				return err
			}
			if v != nil {
				*p(x) = *v
			}
			return nil
		},
	}
}

func optIntF[T any](name string, filterable bool, p func(T) *opt[int64]) jsonField[T] {
	return jsonField[T]{
		name: name, typ: odata.Int, filterable: filterable,
		get: func(x T) odata.Value {
			v := *p(x)
			if !v.OK {
				return odata.Value{Null: true}
			}
			return odata.Value{Int: v.V, Float: float64(v.V)}
		},
		enc: func(b []byte, x T) []byte { return appendOptInt(b, *p(x)) },
		dec: func(x T, raw json.RawMessage) error { return decodeOpt(raw, p(x)) },
	}
}

// timeF is a DateTimeOffset; the zero time is null.
func timeF[T any](name string, filterable bool, p func(T) *time.Time) jsonField[T] {
	return jsonField[T]{
		name: name, typ: odata.DateTime, filterable: filterable,
		get: func(x T) odata.Value { return timeValue(*p(x)) },
		enc: func(b []byte, x T) []byte { return appendTime(b, *p(x)) },
		dec: func(x T, raw json.RawMessage) error {
			var s *string
			if err := json.Unmarshal(raw, &s); err != nil {
				return err
			}
			if s == nil || *s == "" {
				*p(x) = time.Time{}
				return nil
			}
			t, err := odata.ParseDateTime(*s)
			if err != nil {
				return err
			}
			*p(x) = t
			return nil
		},
	}
}

// complexF is an object or a list: encoded and decoded whole, never
// filtered or sorted on.
func complexF[T any](name string, enc func([]byte, T) []byte, dec func(T, json.RawMessage) error) jsonField[T] {
	return jsonField[T]{name: name, typ: odata.Complex, get: func(T) odata.Value { return odata.Value{Null: true} }, enc: enc, dec: dec}
}

func fieldIndex[T any](fields []jsonField[T]) map[string]int {
	m := make(map[string]int, len(fields))
	for i, f := range fields {
		m[f.name] = i
	}
	return m
}

// appendObject appends x as a JSON object of fields. prefix, when given, is
// written first inside the braces (a single entity's @odata.context); skip,
// when set, replaces a field's value: fields for which it returns a
// non-nil value are written with that value instead.
func appendObject[T any](b []byte, fields []jsonField[T], x T, prefix []byte, extra []extraField, skip func(i int) []byte) []byte {
	b = append(b, '{')
	first := true
	if len(prefix) > 0 {
		b = append(b, prefix...)
		first = false
	}
	for i := range fields {
		if !first {
			b = append(b, ',')
		}
		first = false
		f := &fields[i]
		b = append(b, '"')
		b = append(b, f.name...)
		b = append(b, '"', ':')
		if skip != nil {
			if v := skip(i); v != nil {
				b = append(b, v...)
				continue
			}
		}
		b = f.enc(b, x)
	}
	for _, e := range extra {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, e.Key)
		b = append(b, ':')
		b = append(b, e.Value...)
	}
	return append(b, '}')
}

// decodeObject reads a JSON object into x through fields; keys it does not
// know are returned verbatim (compacted), @odata annotations dropped.
func decodeObject[T any](data []byte, fields []jsonField[T], index map[string]int, x T) ([]extraField, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var extra []extraField
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("field %s: %w", key, err)
		}
		if i, ok := index[key]; ok {
			if err := fields[i].dec(x, raw); err != nil {
				return nil, fmt.Errorf("field %s: %w", key, err)
			}
			continue
		}
		if strings.HasPrefix(key, "@odata.") {
			continue
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return nil, fmt.Errorf("field %s: %w", key, err)
		}
		extra = append(extra, extraField{Key: key, Value: compact.Bytes()})
	}
	return extra, nil
}

func optValue(v opt[string]) odata.Value {
	if !v.OK {
		return odata.Value{Null: true}
	}
	return odata.Value{Str: v.V}
}

func timeValue(t time.Time) odata.Value {
	if t.IsZero() {
		return odata.Value{Null: true}
	}
	return odata.Value{Time: t}
}

func decodeOpt[T any](raw json.RawMessage, dst *opt[T]) error {
	var v *T
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	if v == nil {
		*dst = opt[T]{}
	} else {
		*dst = some(*v)
	}
	return nil
}

// withType is f with another OData type (a string property that is a Guid).
func (f jsonField[T]) withType(t odata.Type) jsonField[T] {
	f.typ = t
	return f
}

// schemaProperties is what $filter, $orderby and $select may use of an
// entity whose wire form is fields: complex and collection properties are
// not sortable.
func schemaProperties[T any](fields []jsonField[T]) []odata.Property[T] {
	props := make([]odata.Property[T], 0, len(fields))
	for _, f := range fields {
		props = append(props, odata.Property[T]{
			Name: f.name, Type: f.typ, Filterable: f.filterable,
			Sortable: f.typ != odata.Complex && f.typ != odata.StringCollection,
			Get:      f.get,
		})
	}
	return props
}

// appendSelected appends x as a JSON object of the fields at the indexes
// which, in that order; skip works as in appendObject.
func appendSelected[T any](b []byte, fields []jsonField[T], x T, which []int, skip func(i int) []byte) []byte {
	b = append(b, '{')
	for n, i := range which {
		if n > 0 {
			b = append(b, ',')
		}
		f := &fields[i]
		b = appendString(b, f.name)
		b = append(b, ':')
		if skip != nil {
			if v := skip(i); v != nil {
				b = append(b, v...)
				continue
			}
		}
		b = f.enc(b, x)
	}
	return append(b, '}')
}
