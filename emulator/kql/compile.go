package kql

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
)

// SemanticError is a query that parses but names a table, column or
// function that does not exist, or applies an operator to the wrong types.
// Its message is worded as Kusto words it.
type SemanticError struct {
	Op  string // the tabular operator, e.g. "where"; "" for the query as a whole
	Msg string
}

func (e *SemanticError) Error() string {
	if e.Op != "" {
		return fmt.Sprintf("'%s' operator: %s", e.Op, e.Msg)
	}
	return e.Msg
}

type evalFn func(row []Value) Value

// cexpr is a compiled scalar expression.
type cexpr struct {
	typ   Type
	eval  evalFn
	konst bool  // a constant: val holds it
	val   Value //
	cols  []int // columns it reads
}

func constant(v Value) cexpr {
	return cexpr{typ: v.Kind, konst: true, val: v, eval: func([]Value) Value { return v }}
}

// scope is the schema an expression is compiled against.
type scope struct {
	cols  []Column
	index map[string]int
}

func newScope(cols []Column) *scope {
	s := &scope{cols: cols, index: make(map[string]int, len(cols))}
	for i, c := range cols {
		s.index[c.Name] = i
	}
	return s
}

type compiler struct {
	op  string // the operator being compiled, for messages
	sc  *scope
	now int64 // the query's now(), Unix nanoseconds
}

func (c *compiler) errorf(format string, args ...any) *SemanticError {
	return &SemanticError{Op: c.op, Msg: fmt.Sprintf(format, args...)}
}

func unionCols(xs ...cexpr) []int {
	var out []int
	for _, x := range xs {
		for _, c := range x.cols {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}

// finish records what x reads and folds it to a constant when every
// operand is one.
func finish(x cexpr, args ...cexpr) cexpr {
	x.cols = unionCols(args...)
	allConst := true
	for _, a := range args {
		allConst = allConst && a.konst
	}
	if allConst && x.eval != nil {
		v := x.eval(nil)
		t := x.typ
		x = constant(v)
		if v.Kind == Null {
			x.typ = t
		}
	}
	return x
}

func (c *compiler) compile(e Expr) (cexpr, error) {
	switch e := e.(type) {
	case *Literal:
		return constant(e.Val), nil
	case *Ident:
		i, ok := c.sc.index[e.Name]
		if !ok {
			return cexpr{}, c.errorf("Failed to resolve scalar expression named '%s'", e.Name)
		}
		return cexpr{typ: c.sc.cols[i].Type, cols: []int{i}, eval: func(r []Value) Value { return r[i] }}, nil
	case *Star:
		return cexpr{}, c.errorf("'*' is only allowed as an argument of arg_max and arg_min")
	case *Unary:
		x, err := c.compile(e.X)
		if err != nil {
			return cexpr{}, err
		}
		if !x.typ.numeric() && x.typ != TimeSpan && x.typ != Null {
			return cexpr{}, c.errorf("the unary operator '-' cannot be applied to type %s", x.typ)
		}
		return finish(cexpr{typ: x.typ, eval: func(r []Value) Value {
			v := x.eval(r)
			switch v.Kind {
			case Real:
				v.F = -v.F
			case Int, Long, TimeSpan:
				v.I = -v.I
			}
			return v
		}}, x), nil
	case *Binary:
		return c.binary(e)
	case *ListOp:
		return c.listOp(e)
	case *Between:
		return c.between(e)
	case *Index:
		return c.index(e)
	case *Call:
		if aggNames[e.Name] {
			return cexpr{}, c.errorf("the aggregation function '%s' can only be used in summarize", e.Name)
		}
		spec, ok := scalarFuncs[e.Name]
		if !ok {
			return cexpr{}, c.errorf("Unknown function: '%s'.", e.Name)
		}
		if len(e.Args) < spec.min || (spec.max >= 0 && len(e.Args) > spec.max) {
			return cexpr{}, c.errorf("function '%s' takes %s, not %d", e.Name, arity(spec.min, spec.max), len(e.Args))
		}
		args := make([]cexpr, len(e.Args))
		for i, a := range e.Args {
			x, err := c.compile(a)
			if err != nil {
				return cexpr{}, err
			}
			args[i] = x
		}
		x, err := spec.build(c, e.Name, args)
		if err != nil {
			return cexpr{}, err
		}
		return finish(x, args...), nil
	}
	return cexpr{}, c.errorf("unsupported expression")
}

func arity(min, max int) string {
	switch {
	case max < 0:
		return fmt.Sprintf("at least %d arguments", min)
	case min == max:
		return fmt.Sprintf("%d arguments", min)
	}
	return fmt.Sprintf("%d to %d arguments", min, max)
}

// category groups the types that compare with one another.
func category(t Type) int {
	switch t {
	case Int, Long, Real:
		return 1
	case String:
		return 2
	case Bool:
		return 3
	case DateTime:
		return 4
	case TimeSpan:
		return 5
	case Dynamic:
		return 6
	}
	return 0
}

func comparable(a, b Type) bool {
	return a == Null || b == Null || a == Dynamic || b == Dynamic || category(a) == category(b)
}

func (c *compiler) binary(e *Binary) (cexpr, error) {
	l, err := c.compile(e.L)
	if err != nil {
		return cexpr{}, err
	}
	r, err := c.compile(e.R)
	if err != nil {
		return cexpr{}, err
	}
	switch op := e.Op; op {
	case "and", "or":
		for _, x := range []cexpr{l, r} {
			if x.typ != Bool && x.typ != Null && x.typ != Dynamic {
				return cexpr{}, c.errorf("the operator '%s' needs bool operands, not %s", op, x.typ)
			}
		}
		if op == "and" {
			return finish(cexpr{typ: Bool, eval: func(row []Value) Value {
				if !l.eval(row).truthy() {
					return BoolValue(false)
				}
				return BoolValue(r.eval(row).truthy())
			}}, l, r), nil
		}
		return finish(cexpr{typ: Bool, eval: func(row []Value) Value {
			if l.eval(row).truthy() {
				return BoolValue(true)
			}
			return BoolValue(r.eval(row).truthy())
		}}, l, r), nil
	case "+", "-", "*", "/", "%":
		return c.arithmetic(op, l, r)
	case "==", "!=", "=~", "!~":
		if !comparable(l.typ, r.typ) {
			return cexpr{}, c.errorf("Cannot compare values of types %s and %s. Try adding explicit casts", l.typ, r.typ)
		}
		fold := op == "=~" || op == "!~"
		if fold && l.typ != String && l.typ != Dynamic && l.typ != Null {
			return cexpr{}, c.errorf("the operator '%s' needs string operands, not %s", op, l.typ)
		}
		neg := op == "!=" || op == "!~"
		return finish(cexpr{typ: Bool, eval: func(row []Value) Value {
			a, b := l.eval(row), r.eval(row)
			if a.Kind == Null || b.Kind == Null {
				return Value{}
			}
			return BoolValue(equalValues(a, b, fold) != neg)
		}}, l, r), nil
	case "<", "<=", ">", ">=":
		if !comparable(l.typ, r.typ) || l.typ == String || l.typ == Bool || r.typ == String || r.typ == Bool {
			return cexpr{}, c.errorf("Cannot compare values of types %s and %s. Try adding explicit casts", l.typ, r.typ)
		}
		return finish(cexpr{typ: Bool, eval: func(row []Value) Value {
			a, b := l.eval(row), r.eval(row)
			cmp, ok := orderValues(a, b)
			if !ok {
				return Value{}
			}
			return BoolValue(holds(op, cmp))
		}}, l, r), nil
	case "matches regex":
		if !r.konst || r.val.Kind != String {
			return cexpr{}, c.errorf("matches regex needs a constant string pattern")
		}
		re, err := regexp.Compile(r.val.S)
		if err != nil {
			return cexpr{}, c.errorf("invalid regular expression %q: %v", r.val.S, err)
		}
		return finish(cexpr{typ: Bool, eval: func(row []Value) Value {
			v := l.eval(row)
			if v.Kind == Null {
				return BoolValue(false)
			}
			return BoolValue(re.MatchString(v.Text()))
		}}, l, r), nil
	}
	if comparisonOps[e.Op] {
		return c.stringOp(e.Op, l, r)
	}
	return cexpr{}, c.errorf("unsupported operator '%s'", e.Op)
}

func holds(op string, cmp int) bool {
	switch op {
	case "<":
		return cmp < 0
	case "<=":
		return cmp <= 0
	case ">":
		return cmp > 0
	}
	return cmp >= 0
}

// scalarOf turns a dynamic scalar into a typed value; other values pass.
func scalarOf(v Value) Value {
	if v.Kind == Dynamic {
		return fromDynamic(v.D)
	}
	return v
}

// equalValues compares two non-null values of comparable types.
func equalValues(a, b Value, fold bool) bool {
	a, b = scalarOf(a), scalarOf(b)
	switch {
	case a.Kind.numeric() && b.Kind.numeric():
		if a.Kind == Real || b.Kind == Real {
			return a.float() == b.float()
		}
		return a.I == b.I
	case a.Kind == String && b.Kind == String:
		if fold {
			return strings.EqualFold(a.S, b.S)
		}
		return a.S == b.S
	case a.Kind != b.Kind:
		if a.Kind == Dynamic || b.Kind == Dynamic {
			return a.Text() == b.Text()
		}
		return false
	case a.Kind == Dynamic:
		return a.Text() == b.Text()
	}
	return a.I == b.I
}

// orderValues compares two values for <, >; ok is false when either is
// null or they do not order.
func orderValues(a, b Value) (int, bool) {
	a, b = scalarOf(a), scalarOf(b)
	switch {
	case a.Kind == Null || b.Kind == Null:
		return 0, false
	case a.Kind.numeric() && b.Kind.numeric():
		if a.Kind == Real || b.Kind == Real {
			x, y := a.float(), b.float()
			switch {
			case x < y:
				return -1, true
			case x > y:
				return 1, true
			case x == y:
				return 0, true
			}
			return 0, false
		}
		return cmp.Compare(a.I, b.I), true
	case a.Kind == b.Kind && (a.Kind == DateTime || a.Kind == TimeSpan || a.Kind == Bool):
		return cmp.Compare(a.I, b.I), true
	case a.Kind == String && b.Kind == String:
		return strings.Compare(a.S, b.S), true
	}
	return 0, false
}

func (c *compiler) arithmetic(op string, l, r cexpr) (cexpr, error) {
	t, ok := arithType(op, l.typ, r.typ)
	if !ok {
		return cexpr{}, c.errorf("the operator '%s' cannot be applied to types %s and %s", op, l.typ, r.typ)
	}
	return finish(cexpr{typ: t, eval: func(row []Value) Value {
		return arith(op, scalarOf(l.eval(row)), scalarOf(r.eval(row)), t)
	}}, l, r), nil
}

func arithType(op string, a, b Type) (Type, bool) {
	if a == Dynamic || b == Dynamic {
		if a == Dynamic && b == Dynamic {
			return Real, true
		}
		if a == Dynamic {
			a = b
		}
		return a, true
	}
	if a == Null {
		return b, b != Null
	}
	if b == Null {
		return a, true
	}
	switch {
	case a.numeric() && b.numeric():
		if op == "%" && (a == Real || b == Real) {
			return 0, false
		}
		switch {
		case a == Real || b == Real:
			return Real, true
		case a == Int && b == Int:
			return Int, true
		}
		return Long, true
	case a == DateTime && b == DateTime && op == "-":
		return TimeSpan, true
	case a == DateTime && b == TimeSpan && (op == "+" || op == "-"), a == TimeSpan && b == DateTime && op == "+":
		return DateTime, true
	case a == TimeSpan && b == TimeSpan && (op == "+" || op == "-"):
		return TimeSpan, true
	case a == TimeSpan && b == TimeSpan && op == "/":
		return Real, true
	case a == TimeSpan && b.numeric() && (op == "*" || op == "/"), a.numeric() && b == TimeSpan && op == "*":
		return TimeSpan, true
	}
	return 0, false
}

func arith(op string, a, b Value, t Type) Value {
	if a.Kind == Null || b.Kind == Null {
		return Value{}
	}
	switch t {
	case Real:
		if a.Kind == TimeSpan && b.Kind == TimeSpan {
			if b.I == 0 {
				return Value{}
			}
			return RealValue(float64(a.I) / float64(b.I))
		}
		if !a.Kind.numeric() || !b.Kind.numeric() {
			return Value{}
		}
		x, y := a.float(), b.float()
		switch op {
		case "+":
			return RealValue(x + y)
		case "-":
			return RealValue(x - y)
		case "*":
			return RealValue(x * y)
		case "/":
			return RealValue(x / y)
		}
		return Value{}
	case Int, Long:
		if !a.Kind.numeric() || !b.Kind.numeric() {
			return Value{}
		}
		if a.Kind == Real || b.Kind == Real {
			return arith(op, a, b, Real)
		}
		x, y := a.I, b.I
		var n int64
		switch op {
		case "+":
			n = x + y
		case "-":
			n = x - y
		case "*":
			n = x * y
		case "/", "%":
			if y == 0 || (x == math.MinInt64 && y == -1) {
				return Value{}
			}
			if op == "/" {
				n = x / y
			} else {
				n = x % y
			}
		}
		return Value{Kind: t, I: n}
	case DateTime:
		switch {
		case a.Kind == DateTime && b.Kind == TimeSpan && op == "+":
			return Value{Kind: DateTime, I: a.I + b.I}
		case a.Kind == DateTime && b.Kind == TimeSpan && op == "-":
			return Value{Kind: DateTime, I: a.I - b.I}
		case a.Kind == TimeSpan && b.Kind == DateTime:
			return Value{Kind: DateTime, I: a.I + b.I}
		}
	case TimeSpan:
		switch {
		case a.Kind == DateTime && b.Kind == DateTime:
			return Value{Kind: TimeSpan, I: a.I - b.I}
		case a.Kind == TimeSpan && b.Kind == TimeSpan && op == "+":
			return Value{Kind: TimeSpan, I: a.I + b.I}
		case a.Kind == TimeSpan && b.Kind == TimeSpan && op == "-":
			return Value{Kind: TimeSpan, I: a.I - b.I}
		case a.Kind == TimeSpan && b.Kind.numeric() && op == "*":
			return Value{Kind: TimeSpan, I: int64(float64(a.I) * b.float())}
		case a.Kind.numeric() && b.Kind == TimeSpan && op == "*":
			return Value{Kind: TimeSpan, I: int64(a.float() * float64(b.I))}
		case a.Kind == TimeSpan && b.Kind.numeric() && op == "/":
			if b.float() == 0 {
				return Value{}
			}
			return Value{Kind: TimeSpan, I: int64(float64(a.I) / b.float())}
		}
	}
	return Value{}
}

func (c *compiler) stringOp(op string, l, r cexpr) (cexpr, error) {
	if r.typ != String && r.typ != Dynamic && r.typ != Null {
		return cexpr{}, c.errorf("the operator '%s' needs a string on its right, not %s", op, r.typ)
	}
	neg := strings.HasPrefix(op, "!")
	name := strings.TrimPrefix(op, "!")
	cs := strings.HasSuffix(name, "_cs")
	name = strings.TrimSuffix(name, "_cs")
	var match func(s, needle string) bool
	switch name {
	case "has":
		match = func(s, n string) bool { return hasTerm(s, n, cs, true, true) }
	case "hasprefix":
		match = func(s, n string) bool { return hasTerm(s, n, cs, true, false) }
	case "hassuffix":
		match = func(s, n string) bool { return hasTerm(s, n, cs, false, true) }
	case "contains":
		match = func(s, n string) bool { return indexFold(s, n, cs) >= 0 }
	case "startswith":
		match = func(s, n string) bool { return len(s) >= len(n) && equalFold(s[:len(n)], n, cs) }
	case "endswith":
		match = func(s, n string) bool { return len(s) >= len(n) && equalFold(s[len(s)-len(n):], n, cs) }
	default:
		return cexpr{}, c.errorf("unsupported operator '%s'", op)
	}
	return finish(cexpr{typ: Bool, eval: func(row []Value) Value {
		a, b := l.eval(row), r.eval(row)
		if a.Kind == Null && l.typ != String {
			return BoolValue(neg)
		}
		return BoolValue(match(a.Text(), b.Text()) != neg)
	}}, l, r), nil
}

// equalFold compares a and b, ignoring case unless cs.
func equalFold(a, b string, cs bool) bool {
	if cs {
		return a == b
	}
	return strings.EqualFold(a, b)
}

// indexFold finds needle in s, ignoring case unless cs.
func indexFold(s, needle string, cs bool) int {
	if cs {
		return strings.Index(s, needle)
	}
	if needle == "" {
		return 0
	}
	for i := 0; i+len(needle) <= len(s); i++ {
		if lowerASCII(s[i]) == lowerASCII(needle[0]) && strings.EqualFold(s[i:i+len(needle)], needle) {
			return i
		}
	}
	// Non-ASCII case folding can change byte lengths.
	if !isASCII(s) || !isASCII(needle) {
		return strings.Index(strings.ToLower(s), strings.ToLower(needle))
	}
	return -1
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool { return isDigit(c) || isLetter(c) && c != '_' || c >= 0x80 }

// hasTerm reports whether needle occurs in s on term boundaries (letters
// and digits make terms), as Kusto's has, hasprefix and hassuffix match.
func hasTerm(s, needle string, cs, startBound, endBound bool) bool {
	if needle == "" {
		return true
	}
	for off := 0; off <= len(s); {
		i := indexFold(s[off:], needle, cs)
		if i < 0 {
			return false
		}
		i += off
		end := i + len(needle)
		startOK := !startBound || i == 0 || !isAlnum(s[i-1]) || !isAlnum(needle[0])
		endOK := !endBound || end >= len(s) || !isAlnum(s[end]) || !isAlnum(needle[len(needle)-1])
		if startOK && endOK {
			return true
		}
		off = i + 1
	}
	return false
}

func (c *compiler) listOp(e *ListOp) (cexpr, error) {
	x, err := c.compile(e.X)
	if err != nil {
		return cexpr{}, err
	}
	var items []cexpr
	for _, le := range e.List {
		it, err := c.compile(le)
		if err != nil {
			return cexpr{}, err
		}
		if it.konst && it.val.Kind == Dynamic {
			if arr, ok := it.val.D.([]any); ok {
				for _, a := range arr {
					items = append(items, constant(fromDynamic(a)))
				}
				continue
			}
		}
		if !comparable(x.typ, it.typ) {
			return cexpr{}, c.errorf("Cannot compare values of types %s and %s. Try adding explicit casts", x.typ, it.typ)
		}
		items = append(items, it)
	}
	neg := strings.HasPrefix(e.Op, "!")
	switch op := strings.TrimPrefix(e.Op, "!"); op {
	case "has_any", "has_all":
		all := op == "has_all"
		return finish(cexpr{typ: Bool, eval: func(row []Value) Value {
			s := x.eval(row).Text()
			for _, it := range items {
				found := hasTerm(s, it.eval(row).Text(), false, true, true)
				if found != all {
					return BoolValue(found)
				}
			}
			return BoolValue(all && len(items) > 0)
		}}, append(items, x)...), nil
	case "in", "in~":
		fold := op == "in~"
		allConst := true
		for _, it := range items {
			allConst = allConst && it.konst
		}
		if allConst && (x.typ == String || x.typ == Dynamic) {
			set := make(map[string]bool, len(items))
			for _, it := range items {
				k := it.val.Text()
				if fold {
					k = strings.ToLower(k)
				}
				set[k] = true
			}
			return finish(cexpr{typ: Bool, eval: func(row []Value) Value {
				v := x.eval(row)
				if v.Kind == Null {
					return BoolValue(neg)
				}
				k := v.Text()
				if fold {
					k = strings.ToLower(k)
				}
				return BoolValue(set[k] != neg)
			}}, append(items, x)...), nil
		}
		return finish(cexpr{typ: Bool, eval: func(row []Value) Value {
			v := x.eval(row)
			if v.Kind == Null {
				return BoolValue(neg)
			}
			for _, it := range items {
				if w := it.eval(row); w.Kind != Null && equalValues(v, w, fold) {
					return BoolValue(!neg)
				}
			}
			return BoolValue(neg)
		}}, append(items, x)...), nil
	}
	return cexpr{}, c.errorf("unsupported operator '%s'", e.Op)
}

func (c *compiler) between(e *Between) (cexpr, error) {
	x, err := c.compile(e.X)
	if err != nil {
		return cexpr{}, err
	}
	lo, err := c.compile(e.Lo)
	if err != nil {
		return cexpr{}, err
	}
	hi, err := c.compile(e.Hi)
	if err != nil {
		return cexpr{}, err
	}
	if x.typ == DateTime && hi.typ == TimeSpan {
		// datetime between (start .. length)
		span := hi
		hi = finish(cexpr{typ: DateTime, eval: func(row []Value) Value {
			return arith("+", lo.eval(row), span.eval(row), DateTime)
		}}, lo, span)
	}
	for _, b := range []cexpr{lo, hi} {
		if !comparable(x.typ, b.typ) || x.typ == String || x.typ == Bool {
			return cexpr{}, c.errorf("Cannot compare values of types %s and %s. Try adding explicit casts", x.typ, b.typ)
		}
	}
	return finish(cexpr{typ: Bool, eval: func(row []Value) Value {
		v := x.eval(row)
		c1, ok1 := orderValues(v, lo.eval(row))
		c2, ok2 := orderValues(v, hi.eval(row))
		if !ok1 || !ok2 {
			return BoolValue(false)
		}
		return BoolValue((c1 >= 0 && c2 <= 0) != e.Not)
	}}, x, lo, hi), nil
}

func (c *compiler) index(e *Index) (cexpr, error) {
	x, err := c.compile(e.X)
	if err != nil {
		return cexpr{}, err
	}
	k, err := c.compile(e.Key)
	if err != nil {
		return cexpr{}, err
	}
	if x.typ != Dynamic && x.typ != Null {
		return cexpr{}, c.errorf("only a dynamic value can be indexed, not %s (use parse_json())", x.typ)
	}
	return finish(cexpr{typ: Dynamic, eval: func(row []Value) Value {
		v, key := x.eval(row), k.eval(row)
		if v.Kind != Dynamic {
			return Value{}
		}
		switch d := v.D.(type) {
		case map[string]any:
			if key.Kind == String {
				if el, ok := d[key.S]; ok {
					return DynamicValue(el)
				}
			}
		case []any:
			if key.Kind == Long || key.Kind == Int {
				i := key.I
				if i < 0 {
					i += int64(len(d))
				}
				if i >= 0 && i < int64(len(d)) {
					return DynamicValue(d[i])
				}
			}
		}
		return Value{}
	}}, x, k), nil
}
