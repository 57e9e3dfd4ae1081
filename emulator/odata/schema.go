package odata

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Type is the EDM type of a property or expression.
type Type int

const (
	typeNull Type = iota // the literal null: compatible with everything
	String
	Int
	Float
	Bool
	DateTime
	Guid
	StringCollection
	Complex // an object or a list of objects: selectable only
)

// EdmName is the type's name in messages, e.g. "Edm.String".
func (t Type) EdmName() string {
	switch t {
	case String:
		return "Edm.String"
	case Int:
		return "Edm.Int64"
	case Float:
		return "Edm.Double"
	case Bool:
		return "Edm.Boolean"
	case DateTime:
		return "Edm.DateTimeOffset"
	case Guid:
		return "Edm.Guid"
	case StringCollection:
		return "Collection(Edm.String)"
	case Complex:
		return "Edm.ComplexType"
	}
	return "<null>"
}

// Value is a property value handed to the evaluator. Only the field of the
// property's Type is read; Null marks a JSON null.
type Value struct {
	Null  bool
	Str   string // String, Guid
	Int   int64
	Float float64
	Bool  bool
	Time  time.Time
	List  []string // StringCollection
}

// Property describes one property of an entity.
type Property[T any] struct {
	Name       string // as on the wire, e.g. "computerDnsName"
	Type       Type
	Filterable bool // may appear in $filter
	Sortable   bool // may appear in $orderby
	Get        func(T) Value
}

// SchemaOptions are the service's choices for one entity set.
type SchemaOptions struct {
	// TypeName appears in messages ("... on type 'TypeName'").
	TypeName string
	// Functions lists the functions $filter may call, lower case, e.g.
	// "startswith". Any other known function is refused as not allowed.
	Functions []string
	// AllowIn permits the in operator.
	AllowIn bool
	// CaseSensitive makes string comparisons and ordering exact. Microsoft's
	// SQL-backed services compare case-insensitively, which is the default.
	CaseSensitive bool
}

// Schema is the typed property list of one entity.
type Schema[T any] struct {
	opts    SchemaOptions
	props   []Property[T]
	byLower map[string]int
	funcs   map[string]bool
}

// NewSchema returns a schema for the given properties. Property names are
// matched case-insensitively, as Microsoft's services do.
func NewSchema[T any](opts SchemaOptions, props ...Property[T]) *Schema[T] {
	s := &Schema[T]{opts: opts, props: props, byLower: make(map[string]int, len(props)), funcs: map[string]bool{}}
	for i, p := range props {
		s.byLower[strings.ToLower(p.Name)] = i
	}
	for _, f := range opts.Functions {
		s.funcs[strings.ToLower(f)] = true
	}
	return s
}

// Property returns the property with the given name, matched
// case-insensitively.
func (s *Schema[T]) Property(name string) (Property[T], bool) {
	i, ok := s.byLower[strings.ToLower(name)]
	if !ok {
		return Property[T]{}, false
	}
	return s.props[i], true
}

// Properties returns every property in declaration order.
func (s *Schema[T]) Properties() []Property[T] { return slices.Clone(s.props) }

func (s *Schema[T]) notFound(name string) *Error {
	return errorf("Could not find a property named '%s' on type '%s'.", name, s.opts.TypeName)
}

// ResolveSelect checks a $select list and returns the properties' canonical
// names in the order given. "*" selects everything.
func (s *Schema[T]) ResolveSelect(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		if n == "*" {
			for _, p := range s.props {
				out = append(out, p.Name)
			}
			continue
		}
		p, ok := s.Property(n)
		if !ok {
			return nil, s.notFound(n)
		}
		if !slices.Contains(out, p.Name) {
			out = append(out, p.Name)
		}
	}
	return out, nil
}

// Sorter returns a function that sorts items stably by the $orderby list.
func (s *Schema[T]) Sorter(items []OrderItem) (func([]T), error) {
	type key struct {
		p    Property[T]
		desc bool
	}
	var keys []key
	for _, it := range items {
		p, ok := s.Property(it.Property)
		if !ok {
			return nil, s.notFound(it.Property)
		}
		if !p.Sortable {
			return nil, errorf("The property '%s' cannot be used in the $orderby query option.", p.Name)
		}
		keys = append(keys, key{p, it.Desc})
	}
	fold := !s.opts.CaseSensitive
	return func(xs []T) {
		if len(keys) == 0 || len(xs) < 2 {
			return
		}
		// Read every key once, then sort indexes: Get may build strings.
		vals := make([][]Value, len(xs))
		for i, x := range xs {
			vals[i] = make([]Value, len(keys))
			for k, key := range keys {
				vals[i][k] = key.p.Get(x)
			}
		}
		idx := make([]int, len(xs))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			for k, key := range keys {
				c := compareValues(key.p.Type, vals[a][k], vals[b][k], fold)
				if c != 0 {
					if key.desc {
						return -c
					}
					return c
				}
			}
			return 0
		})
		sorted := make([]T, len(xs))
		for i, j := range idx {
			sorted[i] = xs[j]
		}
		copy(xs, sorted)
	}, nil
}

// compareValues orders two values of one type; null sorts first.
func compareValues(t Type, a, b Value, fold bool) int {
	switch {
	case a.Null && b.Null:
		return 0
	case a.Null:
		return -1
	case b.Null:
		return 1
	}
	switch t {
	case String:
		if fold {
			return compareFold(a.Str, b.Str)
		}
		return strings.Compare(a.Str, b.Str)
	case Guid:
		return compareFold(a.Str, b.Str)
	case Int:
		return cmp.Compare(a.Int, b.Int)
	case Float:
		return cmp.Compare(a.Float, b.Float)
	case Bool:
		switch {
		case a.Bool == b.Bool:
			return 0
		case !a.Bool:
			return -1
		}
		return 1
	case DateTime:
		return a.Time.Compare(b.Time)
	}
	return 0
}

// compareFold compares case-insensitively without allocating for ASCII.
func compareFold(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		if ca >= utf8.RuneSelf || cb >= utf8.RuneSelf {
			return strings.Compare(strings.ToLower(a[i:]), strings.ToLower(b[i:]))
		}
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return cmp.Compare(ca, cb)
		}
	}
	return cmp.Compare(len(a), len(b))
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

func literalValue(l *Literal) (Type, Value) {
	switch l.Kind {
	case LitNull:
		return typeNull, Value{Null: true}
	case LitBool:
		return Bool, Value{Bool: l.Bool}
	case LitString:
		return String, Value{Str: l.Str}
	case LitInt:
		return Int, Value{Int: l.Int, Float: float64(l.Int)}
	case LitFloat:
		return Float, Value{Float: l.Float}
	case LitDateTime:
		return DateTime, Value{Time: l.Time}
	case LitGuid:
		return Guid, Value{Str: l.Str}
	}
	return typeNull, Value{Null: true}
}

// coerceLiteral lets a string literal stand for a number, a date or a guid
// when the other side is such a property: Microsoft's examples write
// rbacGroupId both ways, and a client that quotes a date should not fail here
// when the service itself is lenient.
func coerceLiteral(to Type, v Value) (Value, bool) {
	switch to {
	case Int:
		n, err := strconv.ParseInt(v.Str, 10, 64)
		return Value{Int: n, Float: float64(n)}, err == nil
	case Float:
		f, err := strconv.ParseFloat(v.Str, 64)
		return Value{Float: f}, err == nil
	case DateTime:
		t, ok := parseDateTime(v.Str)
		return Value{Time: t}, ok
	case Guid:
		return Value{Str: strings.ToLower(v.Str)}, true
	}
	return v, false
}
