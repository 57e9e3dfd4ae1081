package kql

import (
	"encoding/json"
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// funcSpec is a scalar function: its arity (max -1: any number) and how it
// compiles, given its compiled arguments.
type funcSpec struct {
	min, max int
	build    func(c *compiler, name string, args []cexpr) (cexpr, error)
}

// scalarFuncs are the scalar functions of the subset. It is a lookup
// table, never written after initialisation.
var scalarFuncs = map[string]funcSpec{
	"ago":             {1, 1, buildAgo},
	"now":             {0, 1, buildNow},
	"datetime":        {1, 1, buildToDateTime},
	"todatetime":      {1, 1, buildToDateTime},
	"totimespan":      {1, 1, buildToTimeSpan},
	"bin":             {2, 2, buildBin},
	"floor":           {2, 2, buildBin},
	"startofday":      {1, 1, buildStartOfDay},
	"tolower":         {1, 1, stringFunc(strings.ToLower)},
	"toupper":         {1, 1, stringFunc(strings.ToUpper)},
	"trim_start":      {1, 1, stringFunc(func(s string) string { return strings.TrimLeft(s, " \t\r\n") })},
	"strlen":          {1, 1, buildStrlen},
	"substring":       {2, 3, buildSubstring},
	"strcat":          {1, 64, buildStrcat},
	"tostring":        {1, 1, stringFunc(func(s string) string { return s })},
	"toint":           {1, 1, buildToNumber(Int)},
	"tolong":          {1, 1, buildToNumber(Long)},
	"todouble":        {1, 1, buildToNumber(Real)},
	"toreal":          {1, 1, buildToNumber(Real)},
	"tobool":          {1, 1, buildToBool},
	"toboolean":       {1, 1, buildToBool},
	"isempty":         {1, 1, buildEmpty(false)},
	"isnotempty":      {1, 1, buildEmpty(true)},
	"isnull":          {1, 1, buildNull(false)},
	"isnotnull":       {1, 1, buildNull(true)},
	"not":             {1, 1, buildNot},
	"iff":             {3, 3, buildIff},
	"iif":             {3, 3, buildIff},
	"coalesce":        {2, 64, buildCoalesce},
	"parse_json":      {1, 1, buildToDynamic},
	"todynamic":       {1, 1, buildToDynamic},
	"array_length":    {1, 1, buildArrayLength},
	"split":           {2, 2, buildSplit},
	"replace_string":  {3, 3, buildReplaceString},
	"extract":         {3, 3, buildExtract},
	"ipv4_is_private": {1, 1, buildIPv4Private},
}

func wantType(c *compiler, name string, x cexpr, types ...Type) error {
	if x.typ == Null || x.typ == Dynamic {
		return nil
	}
	for _, t := range types {
		if x.typ == t {
			return nil
		}
	}
	return c.errorf("function '%s' cannot take an argument of type %s", name, x.typ)
}

func buildAgo(c *compiler, name string, a []cexpr) (cexpr, error) {
	if err := wantType(c, name, a[0], TimeSpan); err != nil {
		return cexpr{}, err
	}
	now := c.now
	return cexpr{typ: DateTime, eval: func(r []Value) Value {
		v := scalarOf(a[0].eval(r))
		if v.Kind != TimeSpan {
			return Value{}
		}
		return Value{Kind: DateTime, I: now - v.I}
	}}, nil
}

func buildNow(c *compiler, name string, a []cexpr) (cexpr, error) {
	now := c.now
	if len(a) == 0 {
		return cexpr{typ: DateTime, eval: func([]Value) Value { return Value{Kind: DateTime, I: now} }}, nil
	}
	if err := wantType(c, name, a[0], TimeSpan); err != nil {
		return cexpr{}, err
	}
	return cexpr{typ: DateTime, eval: func(r []Value) Value {
		v := scalarOf(a[0].eval(r))
		if v.Kind != TimeSpan {
			return Value{}
		}
		return Value{Kind: DateTime, I: now + v.I}
	}}, nil
}

func buildToDateTime(c *compiler, name string, a []cexpr) (cexpr, error) {
	return cexpr{typ: DateTime, eval: func(r []Value) Value {
		v := scalarOf(a[0].eval(r))
		switch v.Kind {
		case DateTime:
			return v
		case String:
			if t, err := ParseDateTime(v.S); err == nil {
				return TimeValue(t)
			}
		}
		return Value{}
	}}, nil
}

func buildToTimeSpan(c *compiler, name string, a []cexpr) (cexpr, error) {
	return cexpr{typ: TimeSpan, eval: func(r []Value) Value {
		v := scalarOf(a[0].eval(r))
		switch v.Kind {
		case TimeSpan:
			return v
		case String:
			if d, err := parseSpanText(strings.TrimSpace(v.S)); err == nil {
				return SpanValue(d)
			}
		}
		return Value{}
	}}, nil
}

func buildBin(c *compiler, name string, a []cexpr) (cexpr, error) {
	x, size := a[0], a[1]
	switch {
	case x.typ == DateTime || x.typ == TimeSpan:
		if err := wantType(c, name, size, TimeSpan); err != nil {
			return cexpr{}, err
		}
	case x.typ.numeric() || x.typ == Null || x.typ == Dynamic:
		if err := wantType(c, name, size, Int, Long, Real); err != nil {
			return cexpr{}, err
		}
	default:
		return cexpr{}, c.errorf("function '%s' cannot take an argument of type %s", name, x.typ)
	}
	t := x.typ
	if t == Int || t == Dynamic {
		t = Long
	}
	if size.typ == Real && t.numeric() {
		t = Real
	}
	return cexpr{typ: t, eval: func(r []Value) Value {
		v, s := scalarOf(x.eval(r)), scalarOf(size.eval(r))
		if v.Kind == Null || s.Kind == Null {
			return Value{}
		}
		if v.Kind == Real || s.Kind == Real {
			f, w := v.float(), s.float()
			if w <= 0 {
				return Value{}
			}
			return RealValue(math.Floor(f/w) * w)
		}
		if s.I <= 0 {
			return Value{}
		}
		q := v.I / s.I
		if v.I < 0 && v.I%s.I != 0 {
			q--
		}
		return Value{Kind: v.Kind, I: q * s.I}
	}}, nil
}

func buildStartOfDay(c *compiler, name string, a []cexpr) (cexpr, error) {
	if err := wantType(c, name, a[0], DateTime); err != nil {
		return cexpr{}, err
	}
	return cexpr{typ: DateTime, eval: func(r []Value) Value {
		v := scalarOf(a[0].eval(r))
		if v.Kind != DateTime {
			return Value{}
		}
		return TimeValue(v.Time().Truncate(24 * time.Hour))
	}}, nil
}

func stringFunc(f func(string) string) func(*compiler, string, []cexpr) (cexpr, error) {
	return func(c *compiler, name string, a []cexpr) (cexpr, error) {
		return cexpr{typ: String, eval: func(r []Value) Value { return StringValue(f(a[0].eval(r).Text())) }}, nil
	}
}

func buildStrlen(c *compiler, name string, a []cexpr) (cexpr, error) {
	return cexpr{typ: Long, eval: func(r []Value) Value {
		return LongValue(int64(utf8.RuneCountInString(a[0].eval(r).Text())))
	}}, nil
}

func buildSubstring(c *compiler, name string, a []cexpr) (cexpr, error) {
	for _, x := range a[1:] {
		if err := wantType(c, name, x, Int, Long); err != nil {
			return cexpr{}, err
		}
	}
	return cexpr{typ: String, eval: func(r []Value) Value {
		s := a[0].eval(r).Text()
		start := scalarOf(a[1].eval(r))
		if start.Kind != Int && start.Kind != Long {
			return StringValue("")
		}
		n := int64(-1)
		if len(a) == 3 {
			l := scalarOf(a[2].eval(r))
			if l.Kind != Int && l.Kind != Long {
				return StringValue("")
			}
			n = max(l.I, 0)
		}
		if !isASCII(s) {
			runes := []rune(s)
			from := min(max(start.I, 0), int64(len(runes)))
			to := int64(len(runes))
			if n >= 0 {
				to = min(from+n, to)
			}
			return StringValue(string(runes[from:to]))
		}
		from := min(max(start.I, 0), int64(len(s)))
		to := int64(len(s))
		if n >= 0 {
			to = min(from+n, to)
		}
		return StringValue(s[from:to])
	}}, nil
}

func buildStrcat(c *compiler, name string, a []cexpr) (cexpr, error) {
	return cexpr{typ: String, eval: func(r []Value) Value {
		var b strings.Builder
		for _, x := range a {
			b.WriteString(x.eval(r).Text())
		}
		return StringValue(b.String())
	}}, nil
}

func buildToNumber(t Type) func(*compiler, string, []cexpr) (cexpr, error) {
	return func(c *compiler, name string, a []cexpr) (cexpr, error) {
		return cexpr{typ: t, eval: func(r []Value) Value {
			v := scalarOf(a[0].eval(r))
			var f float64
			switch v.Kind {
			case Bool, Int, Long:
				if t != Real {
					return Value{Kind: t, I: v.I}
				}
				f = float64(v.I)
			case Real:
				f = v.F
			case String:
				s := strings.TrimSpace(v.S)
				if t != Real {
					if n, err := strconv.ParseInt(s, 10, 64); err == nil {
						return Value{Kind: t, I: n}
					}
				}
				var err error
				if f, err = strconv.ParseFloat(s, 64); err != nil {
					return Value{}
				}
			case DateTime, TimeSpan:
				if t == Real {
					return Value{}
				}
				return Value{Kind: t, I: v.I}
			default:
				return Value{}
			}
			if t == Real {
				return RealValue(f)
			}
			if math.IsNaN(f) || math.Abs(f) >= 9.2e18 {
				return Value{}
			}
			return Value{Kind: t, I: int64(f)}
		}}, nil
	}
}

func buildToBool(c *compiler, name string, a []cexpr) (cexpr, error) {
	return cexpr{typ: Bool, eval: func(r []Value) Value {
		v := scalarOf(a[0].eval(r))
		switch v.Kind {
		case Bool:
			return v
		case Int, Long:
			return BoolValue(v.I != 0)
		case String:
			switch strings.ToLower(strings.TrimSpace(v.S)) {
			case "true", "1":
				return BoolValue(true)
			case "false", "0":
				return BoolValue(false)
			}
		}
		return Value{}
	}}, nil
}

func isEmpty(v Value) bool {
	switch v.Kind {
	case Null:
		return true
	case String:
		return v.S == ""
	case Dynamic:
		switch d := v.D.(type) {
		case nil:
			return true
		case string:
			return d == ""
		}
	}
	return false
}

func buildEmpty(not bool) func(*compiler, string, []cexpr) (cexpr, error) {
	return func(c *compiler, name string, a []cexpr) (cexpr, error) {
		return cexpr{typ: Bool, eval: func(r []Value) Value { return BoolValue(isEmpty(a[0].eval(r)) != not) }}, nil
	}
}

func buildNull(not bool) func(*compiler, string, []cexpr) (cexpr, error) {
	return func(c *compiler, name string, a []cexpr) (cexpr, error) {
		return cexpr{typ: Bool, eval: func(r []Value) Value {
			v := a[0].eval(r)
			null := v.Kind == Null || v.Kind == Dynamic && v.D == nil
			return BoolValue(null != not)
		}}, nil
	}
}

func buildNot(c *compiler, name string, a []cexpr) (cexpr, error) {
	if err := wantType(c, name, a[0], Bool); err != nil {
		return cexpr{}, err
	}
	return cexpr{typ: Bool, eval: func(r []Value) Value {
		v := scalarOf(a[0].eval(r))
		if v.Kind != Bool {
			return Value{}
		}
		return BoolValue(v.I == 0)
	}}, nil
}

// unify finds the common type of branches (iff, coalesce).
func unify(c *compiler, name string, xs []cexpr) (Type, error) {
	t := Null
	for _, x := range xs {
		switch {
		case x.typ == Null || x.typ == t:
		case t == Null:
			t = x.typ
		case t.numeric() && x.typ.numeric():
			if t == Real || x.typ == Real {
				t = Real
			} else {
				t = Long
			}
		default:
			return 0, c.errorf("the arguments of '%s' have different types: %s and %s", name, t, x.typ)
		}
	}
	return t, nil
}

// convert makes v of type t where t is a numeric widening of v's kind.
func convert(v Value, t Type) Value {
	if v.Kind == t || v.Kind == Null {
		return v
	}
	switch {
	case t == Real && (v.Kind == Int || v.Kind == Long):
		return RealValue(float64(v.I))
	case t == Long && v.Kind == Int:
		return LongValue(v.I)
	}
	return v
}

func buildIff(c *compiler, name string, a []cexpr) (cexpr, error) {
	if err := wantType(c, name, a[0], Bool); err != nil {
		return cexpr{}, err
	}
	t, err := unify(c, name, a[1:])
	if err != nil {
		return cexpr{}, err
	}
	return cexpr{typ: t, eval: func(r []Value) Value {
		if a[0].eval(r).truthy() {
			return convert(a[1].eval(r), t)
		}
		return convert(a[2].eval(r), t)
	}}, nil
}

func buildCoalesce(c *compiler, name string, a []cexpr) (cexpr, error) {
	t, err := unify(c, name, a)
	if err != nil {
		return cexpr{}, err
	}
	return cexpr{typ: t, eval: func(r []Value) Value {
		for _, x := range a {
			if v := x.eval(r); !isEmpty(v) {
				return convert(v, t)
			}
		}
		return Value{}
	}}, nil
}

func buildToDynamic(c *compiler, name string, a []cexpr) (cexpr, error) {
	return cexpr{typ: Dynamic, eval: func(r []Value) Value {
		v := a[0].eval(r)
		switch v.Kind {
		case Dynamic:
			return v
		case String:
			var d any
			if err := json.Unmarshal([]byte(v.S), &d); err != nil {
				return DynamicValue(v.S)
			}
			return DynamicValue(d)
		case Null:
			return Value{}
		}
		return DynamicValue(toDynamic(v))
	}}, nil
}

func buildArrayLength(c *compiler, name string, a []cexpr) (cexpr, error) {
	return cexpr{typ: Long, eval: func(r []Value) Value {
		if arr, ok := a[0].eval(r).D.([]any); ok {
			return LongValue(int64(len(arr)))
		}
		return Value{}
	}}, nil
}

func buildSplit(c *compiler, name string, a []cexpr) (cexpr, error) {
	return cexpr{typ: Dynamic, eval: func(r []Value) Value {
		s, sep := a[0].eval(r).Text(), a[1].eval(r).Text()
		if sep == "" {
			return DynamicValue([]any{s})
		}
		parts := strings.Split(s, sep)
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = p
		}
		return DynamicValue(out)
	}}, nil
}

func buildReplaceString(c *compiler, name string, a []cexpr) (cexpr, error) {
	return cexpr{typ: String, eval: func(r []Value) Value {
		s, old, repl := a[0].eval(r).Text(), a[1].eval(r).Text(), a[2].eval(r).Text()
		if old == "" {
			return StringValue(s)
		}
		return StringValue(strings.ReplaceAll(s, old, repl))
	}}, nil
}

func buildExtract(c *compiler, name string, a []cexpr) (cexpr, error) {
	if !a[0].konst || a[0].val.Kind != String || !a[1].konst || (a[1].val.Kind != Long && a[1].val.Kind != Int) {
		return cexpr{}, c.errorf("function 'extract' needs a constant pattern and group")
	}
	re, err := regexp.Compile(a[0].val.S)
	if err != nil {
		return cexpr{}, c.errorf("invalid regular expression %q: %v", a[0].val.S, err)
	}
	group := a[1].val.I
	if group < 0 || group > int64(re.NumSubexp()) {
		return cexpr{}, c.errorf("function 'extract': the pattern has no group %d", group)
	}
	return cexpr{typ: String, eval: func(r []Value) Value {
		m := re.FindStringSubmatch(a[2].eval(r).Text())
		if m == nil {
			return StringValue("")
		}
		return StringValue(m[group])
	}}, nil
}

func buildIPv4Private(c *compiler, name string, a []cexpr) (cexpr, error) {
	return cexpr{typ: Bool, eval: func(r []Value) Value {
		ip, err := netip.ParseAddr(a[0].eval(r).Text())
		if err != nil || !ip.Is4() {
			return Value{}
		}
		return BoolValue(ip.IsPrivate())
	}}, nil
}
