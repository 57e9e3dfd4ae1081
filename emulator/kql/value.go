package kql

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// Type is a Kusto scalar type. Null is not a column type: it marks a value
// that is null (and an expression whose type is not known yet, the null
// literal).
type Type uint8

const (
	Null Type = iota
	Bool
	Int  // 32-bit in Kusto; held as int64
	Long // 64-bit
	Real
	String
	DateTime
	TimeSpan
	Dynamic
)

var typeNames = [...]string{"null", "bool", "int", "long", "real", "string", "datetime", "timespan", "dynamic"}

// String is the Kusto name of the type ("long", "datetime").
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "unknown"
}

// APIName is the name advanced hunting's response Schema gives the type:
// the .NET type behind it ("Int64", "DateTime", "Object" for dynamic).
func (t Type) APIName() string {
	switch t {
	case Bool:
		return "Boolean"
	case Int:
		return "Int32"
	case Long:
		return "Int64"
	case Real:
		return "Double"
	case DateTime:
		return "DateTime"
	case TimeSpan:
		return "TimeSpan"
	case Dynamic:
		return "Object"
	}
	return "String"
}

func (t Type) numeric() bool { return t == Int || t == Long || t == Real }

// Column is a named, typed column of a table or a result.
type Column struct {
	Name string
	Type Type
}

// Value is one cell. Kind is the type of the value, or Null. Bool, Int,
// Long, DateTime (Unix nanoseconds) and TimeSpan (nanoseconds) use I; Real
// uses F; String uses S; Dynamic holds a decoded JSON value in D (nil,
// bool, float64, string, []any, map[string]any).
type Value struct {
	Kind Type
	I    int64
	F    float64
	S    string
	D    any
}

// Constructors for table implementations.

func BoolValue(b bool) Value {
	if b {
		return Value{Kind: Bool, I: 1}
	}
	return Value{Kind: Bool}
}
func IntValue(n int64) Value    { return Value{Kind: Int, I: n} }
func LongValue(n int64) Value   { return Value{Kind: Long, I: n} }
func RealValue(f float64) Value { return Value{Kind: Real, F: f} }
func StringValue(s string) Value {
	return Value{Kind: String, S: s}
}
func TimeValue(t time.Time) Value {
	if t.IsZero() {
		return Value{}
	}
	return Value{Kind: DateTime, I: t.UnixNano()}
}
func SpanValue(d time.Duration) Value { return Value{Kind: TimeSpan, I: int64(d)} }

// DynamicValue holds a JSON-shaped Go value (nil, bool, float64, string,
// []any, map[string]any).
func DynamicValue(v any) Value { return Value{Kind: Dynamic, D: v} }

// IsNull reports whether v is null. A string is never null in Kusto: an
// empty string stands for a missing one.
func (v Value) IsNull() bool { return v.Kind == Null }

// Time returns a DateTime value as a time.Time in UTC.
func (v Value) Time() time.Time { return time.Unix(0, v.I).UTC() }

func (v Value) truthy() bool { return v.Kind == Bool && v.I != 0 }

// float returns a numeric value as float64.
func (v Value) float() float64 {
	if v.Kind == Real {
		return v.F
	}
	return float64(v.I)
}

// timeLayout is how Text writes a datetime: UTC with all seven
// fractional digits, as the service writes them ("2020-02-05T01:10:26.2648757Z").
const timeLayout = "2006-01-02T15:04:05.0000000Z"

// Text renders v for string functions and concatenation (tostring()).
func (v Value) Text() string {
	switch v.Kind {
	case Null:
		return ""
	case Bool:
		if v.I != 0 {
			return "true"
		}
		return "false"
	case Int, Long:
		return strconv.FormatInt(v.I, 10)
	case Real:
		return strconv.FormatFloat(v.F, 'g', -1, 64)
	case String:
		return v.S
	case DateTime:
		return v.Time().Format(timeLayout)
	case TimeSpan:
		return FormatTimeSpan(time.Duration(v.I))
	case Dynamic:
		if s, ok := v.D.(string); ok {
			return s
		}
		data, err := json.Marshal(v.D)
		if err != nil {
			return ""
		}
		return string(data)
	}
	return ""
}

// FormatTimeSpan writes d as Kusto (and .NET) print a timespan:
// "1.02:03:04.5000000", "00:10:00".
func FormatTimeSpan(d time.Duration) string {
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		if d == math.MinInt64 {
			d++
		}
		d = -d
	}
	ticks := int64(d / 100)
	days := ticks / 864_000_000_000
	ticks -= days * 864_000_000_000
	h := ticks / 36_000_000_000
	ticks -= h * 36_000_000_000
	m := ticks / 600_000_000
	ticks -= m * 600_000_000
	s := ticks / 10_000_000
	frac := ticks - s*10_000_000
	if days > 0 {
		b.WriteString(strconv.FormatInt(days, 10))
		b.WriteByte('.')
	}
	two := func(n int64) {
		if n < 10 {
			b.WriteByte('0')
		}
		b.WriteString(strconv.FormatInt(n, 10))
	}
	two(h)
	b.WriteByte(':')
	two(m)
	b.WriteByte(':')
	two(s)
	if frac > 0 {
		f := strconv.FormatInt(frac, 10)
		b.WriteByte('.')
		b.WriteString(strings.Repeat("0", 7-len(f)))
		b.WriteString(f)
	}
	return b.String()
}

// toDynamic converts a scalar to the JSON-shaped value dynamic columns hold.
func toDynamic(v Value) any {
	switch v.Kind {
	case Null:
		return nil
	case Bool:
		return v.I != 0
	case Int, Long:
		return v.I
	case Real:
		return v.F
	case String:
		return v.S
	case DateTime, TimeSpan:
		return v.Text()
	case Dynamic:
		return v.D
	}
	return nil
}

// fromDynamic turns an element of a dynamic value back into a value.
func fromDynamic(x any) Value {
	switch x := x.(type) {
	case nil:
		return Value{}
	case bool:
		return BoolValue(x)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return LongValue(int64(x))
		}
		return RealValue(x)
	case int64:
		return LongValue(x)
	case string:
		return StringValue(x)
	}
	return DynamicValue(x)
}
