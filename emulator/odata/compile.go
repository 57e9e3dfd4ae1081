package odata

import (
	"slices"
	"strings"
)

// evalFn evaluates an expression for one item; vars holds the values of the
// lambda variables in scope, innermost last.
type evalFn[T any] func(x T, vars []Value) Value

type node[T any] struct {
	typ   Type
	konst bool // a literal: eval ignores the item
	val   Value
	eval  evalFn[T]
}

type compiler[T any] struct {
	s    *Schema[T]
	fold bool
}

// Compile type-checks a parsed $filter against the schema and returns the
// predicate it stands for.
func (s *Schema[T]) Compile(e Expr) (func(T) bool, error) {
	c := compiler[T]{s: s, fold: !s.opts.CaseSensitive}
	n, err := c.compile(e, nil)
	if err != nil {
		return nil, err
	}
	if n.typ != Bool {
		return nil, errorf("The $filter expression must evaluate to a single boolean value.")
	}
	eval := n.eval
	return func(x T) bool {
		v := eval(x, nil)
		return !v.Null && v.Bool
	}, nil
}

func konst[T any](t Type, v Value) node[T] {
	return node[T]{typ: t, konst: true, val: v, eval: func(T, []Value) Value { return v }}
}

func boolValue(b bool) Value { return Value{Bool: b} }

// knownFunctions are OData's canonical functions. Only those a schema allows
// may be called; the rest are refused as "not allowed", anything else is
// unknown.
var knownFunctions = []string{
	"startswith", "endswith", "contains", "tolower", "toupper", "trim", "length", "indexof", "substring",
	"concat", "year", "month", "day", "hour", "minute", "second", "fractionalseconds", "date", "time",
	"now", "maxdatetime", "mindatetime", "totaloffsetminutes", "round", "floor", "ceiling", "cast", "isof",
	"matchespattern",
}

func (c *compiler[T]) compile(e Expr, scope []string) (node[T], error) {
	switch e := e.(type) {
	case *Literal:
		t, v := literalValue(e)
		return konst[T](t, v), nil
	case *Ident:
		return c.ident(e, scope)
	case *NotExpr:
		x, err := c.compile(e.X, scope)
		if err != nil {
			return node[T]{}, err
		}
		if x.typ != Bool && x.typ != typeNull {
			return node[T]{}, errorf("A unary operator with an incompatible type was detected. Found operand type '%s' for operator kind 'Not'.", x.typ.EdmName())
		}
		xe := x.eval
		return node[T]{typ: Bool, eval: func(it T, vars []Value) Value {
			v := xe(it, vars)
			if v.Null {
				return v
			}
			return boolValue(!v.Bool)
		}}, nil
	case *BinaryExpr:
		return c.binary(e, scope)
	case *CallExpr:
		return c.call(e, scope)
	case *LambdaExpr:
		return c.lambda(e, scope)
	case *ListExpr:
		return node[T]{}, errorf("A list of values may only follow the 'in' operator.")
	}
	return node[T]{}, errorf("Unsupported expression.")
}

func (c *compiler[T]) ident(e *Ident, scope []string) (node[T], error) {
	for i := len(scope) - 1; i >= 0; i-- {
		if scope[i] == e.Name {
			return node[T]{typ: String, eval: func(_ T, vars []Value) Value { return vars[i] }}, nil
		}
	}
	p, ok := c.s.Property(e.Name)
	if !ok {
		return node[T]{}, c.s.notFound(e.Name)
	}
	if !p.Filterable {
		return node[T]{}, errorf("The property '%s' cannot be used in the $filter query option.", p.Name)
	}
	get := p.Get
	return node[T]{typ: p.Type, eval: func(x T, _ []Value) Value { return get(x) }}, nil
}

var opKind = map[string]string{
	"eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan", "ge": "GreaterThanOrEqual",
	"lt": "LessThan", "le": "LessThanOrEqual", "and": "And", "or": "Or", "in": "In",
}

func (c *compiler[T]) binary(e *BinaryExpr, scope []string) (node[T], error) {
	if e.Op == "in" {
		return c.in(e, scope)
	}
	x, err := c.compile(e.X, scope)
	if err != nil {
		return node[T]{}, err
	}
	y, err := c.compile(e.Y, scope)
	if err != nil {
		return node[T]{}, err
	}
	incompatible := func() error {
		return errorf("A binary operator with incompatible types was detected. Found operand types '%s' and '%s' for operator kind '%s'.",
			x.typ.EdmName(), y.typ.EdmName(), opKind[e.Op])
	}
	switch e.Op {
	case "and", "or":
		if (x.typ != Bool && x.typ != typeNull) || (y.typ != Bool && y.typ != typeNull) {
			return node[T]{}, incompatible()
		}
		xe, ye := x.eval, y.eval
		if e.Op == "and" {
			return node[T]{typ: Bool, eval: func(it T, vars []Value) Value {
				a := xe(it, vars)
				if a.Null || !a.Bool {
					return boolValue(false)
				}
				b := ye(it, vars)
				return boolValue(!b.Null && b.Bool)
			}}, nil
		}
		return node[T]{typ: Bool, eval: func(it T, vars []Value) Value {
			if a := xe(it, vars); !a.Null && a.Bool {
				return boolValue(true)
			}
			b := ye(it, vars)
			return boolValue(!b.Null && b.Bool)
		}}, nil
	}
	t, ok := c.unify(&x, &y)
	if !ok {
		return node[T]{}, incompatible()
	}
	if t == StringCollection || t == Complex {
		return node[T]{}, incompatible()
	}
	op, fold := e.Op, c.fold
	xe, ye := x.eval, y.eval
	xt, yt := x.typ, y.typ
	return node[T]{typ: Bool, eval: func(it T, vars []Value) Value {
		a, b := xe(it, vars), ye(it, vars)
		if a.Null || b.Null {
			switch op {
			case "eq":
				return boolValue(a.Null && b.Null)
			case "ne":
				return boolValue(a.Null != b.Null)
			}
			return boolValue(false)
		}
		return boolValue(holds(op, compareAs(t, xt, a, yt, b, fold)))
	}}, nil
}

// unify finds the type two operands are compared as, converting a string
// literal on one side to the other side's type where that is lenient and
// unambiguous.
func (c *compiler[T]) unify(x, y *node[T]) (Type, bool) {
	switch {
	case x.typ == typeNull:
		return y.typ, true
	case y.typ == typeNull:
		return x.typ, true
	case x.typ == y.typ:
		return x.typ, true
	case isNumeric(x.typ) && isNumeric(y.typ):
		return Float, true
	case (x.typ == Guid && y.typ == String) || (x.typ == String && y.typ == Guid):
		return Guid, true
	}
	for _, pair := range [][2]*node[T]{{x, y}, {y, x}} {
		prop, lit := pair[0], pair[1]
		if lit.konst && lit.typ == String && (prop.typ == Int || prop.typ == Float || prop.typ == DateTime) {
			v, ok := coerceLiteral(prop.typ, lit.val)
			if !ok {
				return 0, false
			}
			*lit = konst[T](prop.typ, v)
			return prop.typ, true
		}
	}
	return 0, false
}

func isNumeric(t Type) bool { return t == Int || t == Float }

func asFloat(t Type, v Value) float64 {
	if t == Int {
		return float64(v.Int)
	}
	return v.Float
}

func compareAs(t, xt Type, a Value, yt Type, b Value, fold bool) int {
	if t == Float && (xt != Float || yt != Float) {
		return compareValues(Float, Value{Float: asFloat(xt, a)}, Value{Float: asFloat(yt, b)}, fold)
	}
	return compareValues(t, a, b, fold)
}

func holds(op string, c int) bool {
	switch op {
	case "eq":
		return c == 0
	case "ne":
		return c != 0
	case "gt":
		return c > 0
	case "ge":
		return c >= 0
	case "lt":
		return c < 0
	case "le":
		return c <= 0
	}
	return false
}

func (c *compiler[T]) in(e *BinaryExpr, scope []string) (node[T], error) {
	if !c.s.opts.AllowIn {
		return node[T]{}, errorf("The operator 'in' is not allowed. To allow it, set the 'AllowedLogicalOperators' property on EnableQueryAttribute or QueryValidationSettings.")
	}
	x, err := c.compile(e.X, scope)
	if err != nil {
		return node[T]{}, err
	}
	list, ok := e.Y.(*ListExpr)
	if !ok {
		return node[T]{}, errorf("The 'in' operator requires a parenthesised list of literals.")
	}
	if x.typ == StringCollection || x.typ == Complex {
		return node[T]{}, errorf("The 'in' operator cannot be applied to '%s'.", x.typ.EdmName())
	}
	type item struct {
		as, typ Type
		val     Value
	}
	var items []item
	for _, it := range list.Items {
		y, err := c.compile(it, scope)
		if err != nil {
			return node[T]{}, err
		}
		t, ok := c.unify(&x, &y)
		if !ok {
			return node[T]{}, errorf("A binary operator with incompatible types was detected. Found operand types '%s' and '%s' for operator kind 'In'.", x.typ.EdmName(), y.typ.EdmName())
		}
		items = append(items, item{as: t, typ: y.typ, val: y.val})
	}
	xe, xt, fold := x.eval, x.typ, c.fold
	return node[T]{typ: Bool, eval: func(it T, vars []Value) Value {
		a := xe(it, vars)
		for _, y := range items {
			if a.Null || y.val.Null {
				if a.Null && y.val.Null {
					return boolValue(true)
				}
				continue
			}
			if compareAs(y.as, xt, a, y.typ, y.val, fold) == 0 {
				return boolValue(true)
			}
		}
		return boolValue(false)
	}}, nil
}

func (c *compiler[T]) call(e *CallExpr, scope []string) (node[T], error) {
	name := strings.ToLower(e.Func)
	if !slices.Contains(knownFunctions, name) {
		return node[T]{}, errorf("Unknown function '%s'.", e.Func)
	}
	if !c.s.funcs[name] {
		return node[T]{}, errorf("Function '%s' is not allowed. To allow it, set the 'AllowedFunctions' property on EnableQueryAttribute or QueryValidationSettings.", name)
	}
	args := make([]node[T], len(e.Args))
	for i, a := range e.Args {
		n, err := c.compile(a, scope)
		if err != nil {
			return node[T]{}, err
		}
		args[i] = n
	}
	isStr := func(n node[T]) bool { return n.typ == String || n.typ == Guid || n.typ == typeNull }
	noSignature := func(sig string) error {
		return errorf("No function signature for the function with name '%s' matches the specified arguments. The function signatures considered are: %s.", name, sig)
	}
	fold := c.fold
	switch name {
	case "startswith", "endswith", "contains":
		if len(args) != 2 || !isStr(args[0]) || !isStr(args[1]) {
			return node[T]{}, noSignature(name + "(Edm.String Nullable=true, Edm.String Nullable=true)")
		}
		test := map[string]func(s, sub string) bool{
			"startswith": strings.HasPrefix, "endswith": strings.HasSuffix, "contains": strings.Contains,
		}[name]
		if fold {
			test = map[string]func(s, sub string) bool{
				"startswith": hasPrefixFold, "endswith": hasSuffixFold,
				"contains": func(s, sub string) bool { return strings.Contains(strings.ToLower(s), strings.ToLower(sub)) },
			}[name]
		}
		ae, be := args[0].eval, args[1].eval
		return node[T]{typ: Bool, eval: func(it T, vars []Value) Value {
			a, b := ae(it, vars), be(it, vars)
			if a.Null || b.Null {
				return Value{Null: true}
			}
			return boolValue(test(a.Str, b.Str))
		}}, nil
	case "tolower", "toupper", "trim":
		if len(args) != 1 || !isStr(args[0]) {
			return node[T]{}, noSignature(name + "(Edm.String Nullable=true)")
		}
		f := map[string]func(string) string{"tolower": strings.ToLower, "toupper": strings.ToUpper, "trim": strings.TrimSpace}[name]
		ae := args[0].eval
		return node[T]{typ: String, eval: func(it T, vars []Value) Value {
			a := ae(it, vars)
			if a.Null {
				return a
			}
			return Value{Str: f(a.Str)}
		}}, nil
	case "length":
		if len(args) != 1 || !isStr(args[0]) {
			return node[T]{}, noSignature("length(Edm.String Nullable=true)")
		}
		ae := args[0].eval
		return node[T]{typ: Int, eval: func(it T, vars []Value) Value {
			a := ae(it, vars)
			if a.Null {
				return a
			}
			return Value{Int: int64(len([]rune(a.Str)))}
		}}, nil
	}
	return node[T]{}, errorf("Function '%s' is not supported by this service.", name)
}

func (c *compiler[T]) lambda(e *LambdaExpr, scope []string) (node[T], error) {
	coll, err := c.ident(&e.Collection, scope)
	if err != nil {
		return node[T]{}, err
	}
	if coll.typ != StringCollection {
		return node[T]{}, errorf("The %s query operator can only be applied to a collection; '%s' is of type '%s'.", e.Func, e.Collection.Name, coll.typ.EdmName())
	}
	ce := coll.eval
	if e.Body == nil { // any()
		return node[T]{typ: Bool, eval: func(it T, vars []Value) Value {
			return boolValue(len(ce(it, vars).List) > 0)
		}}, nil
	}
	inner := append(slices.Clip(scope), e.Var)
	body, err := c.compile(e.Body, inner)
	if err != nil {
		return node[T]{}, err
	}
	if body.typ != Bool {
		return node[T]{}, errorf("The expression of the %s lambda must evaluate to a boolean value.", e.Func)
	}
	be, all := body.eval, e.Func == "all"
	return node[T]{typ: Bool, eval: func(it T, vars []Value) Value {
		inner := make([]Value, len(vars)+1)
		copy(inner, vars)
		for _, el := range ce(it, vars).List {
			inner[len(vars)] = Value{Str: el}
			v := be(it, inner)
			ok := !v.Null && v.Bool
			if all && !ok {
				return boolValue(false)
			}
			if !all && ok {
				return boolValue(true)
			}
		}
		return boolValue(all)
	}}, nil
}
