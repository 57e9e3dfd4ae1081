package odata

import (
	"strconv"
	"strings"
	"time"
)

// Expr is a node of a parsed $filter expression. String prints it in a
// canonical form that parses back to the same tree.
type Expr interface {
	String() string
	writeTo(b *strings.Builder)
}

// BinaryExpr is a binary operator: eq ne gt ge lt le and or in.
type BinaryExpr struct {
	Op   string // lower case
	X, Y Expr
}

// NotExpr is the unary not.
type NotExpr struct {
	X Expr
}

// Ident names a property (Name may be a path such as "vmMetadata/vmId") or a
// lambda variable.
type Ident struct {
	Name string
	Pos  int
}

// CallExpr is a function call such as startswith(computerDnsName,'a').
type CallExpr struct {
	Func string // as written
	Args []Expr
	Pos  int
}

// LambdaExpr is collection/any(v: body) or collection/all(v: body); Body is
// nil for the argument-less any().
type LambdaExpr struct {
	Collection Ident
	Func       string // "any" or "all"
	Var        string
	Body       Expr
}

// ListExpr is the parenthesised list on the right of in.
type ListExpr struct {
	Items []Expr
}

// LitKind says what a literal is.
type LitKind int

const (
	LitNull LitKind = iota + 1
	LitBool
	LitString
	LitInt
	LitFloat
	LitDateTime
	LitGuid
)

// Literal is a constant. Raw is the text as written (used to print numbers,
// dates and guids back unchanged); the typed field for Kind holds the value.
type Literal struct {
	Kind  LitKind
	Raw   string
	Str   string
	Int   int64
	Float float64
	Bool  bool
	Time  time.Time
	Pos   int
}

func (e *BinaryExpr) String() string { return exprString(e) }
func (e *NotExpr) String() string    { return exprString(e) }
func (e *Ident) String() string      { return exprString(e) }
func (e *CallExpr) String() string   { return exprString(e) }
func (e *LambdaExpr) String() string { return exprString(e) }
func (e *ListExpr) String() string   { return exprString(e) }
func (e *Literal) String() string    { return exprString(e) }

func exprString(e Expr) string {
	var b strings.Builder
	e.writeTo(&b)
	return b.String()
}

func (e *BinaryExpr) writeTo(b *strings.Builder) {
	b.WriteByte('(')
	e.X.writeTo(b)
	b.WriteByte(' ')
	b.WriteString(e.Op)
	b.WriteByte(' ')
	e.Y.writeTo(b)
	b.WriteByte(')')
}

func (e *NotExpr) writeTo(b *strings.Builder) {
	b.WriteString("not ")
	e.X.writeTo(b)
}

func (e *Ident) writeTo(b *strings.Builder) { b.WriteString(e.Name) }

func (e *CallExpr) writeTo(b *strings.Builder) {
	b.WriteString(e.Func)
	b.WriteByte('(')
	for i, a := range e.Args {
		if i > 0 {
			b.WriteByte(',')
		}
		a.writeTo(b)
	}
	b.WriteByte(')')
}

func (e *LambdaExpr) writeTo(b *strings.Builder) {
	b.WriteString(e.Collection.Name)
	b.WriteByte('/')
	b.WriteString(e.Func)
	b.WriteByte('(')
	if e.Body != nil {
		b.WriteString(e.Var)
		b.WriteString(": ")
		e.Body.writeTo(b)
	}
	b.WriteByte(')')
}

func (e *ListExpr) writeTo(b *strings.Builder) {
	b.WriteByte('(')
	for i, it := range e.Items {
		if i > 0 {
			b.WriteByte(',')
		}
		it.writeTo(b)
	}
	b.WriteByte(')')
}

func (e *Literal) writeTo(b *strings.Builder) {
	switch e.Kind {
	case LitNull:
		b.WriteString("null")
	case LitBool:
		b.WriteString(strconv.FormatBool(e.Bool))
	case LitString:
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(e.Str, "'", "''"))
		b.WriteByte('\'')
	default:
		b.WriteString(e.Raw)
	}
}

// Binding powers, loosest first. Comparison binds tighter than equality as in
// the OData ABNF; not binds tighter than both, so "not a eq b" is
// "(not a) eq b", exactly as Microsoft's parser reads it.
var binaryPower = map[string]int{
	"or": 1, "and": 2,
	"eq": 3, "ne": 3,
	"gt": 4, "ge": 4, "lt": 4, "le": 4, "in": 4,
}

// maxDepth bounds nesting so that a hostile filter cannot exhaust the stack.
const maxDepth = 100

type parser struct {
	text  string
	toks  []token
	i     int
	depth int
}

// ParseFilter parses a $filter expression. It checks syntax only; Compile
// checks names and types against an entity's schema.
func ParseFilter(text string) (Expr, error) {
	if strings.TrimSpace(text) == "" {
		return nil, errorf("The $filter query option must not be empty.")
	}
	toks, err := lex(text)
	if err != nil {
		return nil, err
	}
	p := &parser{text: text, toks: toks}
	e, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.syntaxError(t)
	}
	return e, nil
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) syntaxError(t token) *Error {
	return errorf("Syntax error at position %d in '%s'.", t.pos, p.text)
}

func (p *parser) expect(k tokKind, what string) (token, error) {
	t := p.next()
	if t.kind != k {
		return t, errorf("%s expected at position %d in '%s'.", what, t.pos, p.text)
	}
	return t, nil
}

func (p *parser) expr(minPower int) (Expr, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, errorf("The $filter expression in '%s' is nested too deeply.", p.text)
	}
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t.kind != tokIdent {
			return left, nil
		}
		op := strings.ToLower(t.raw)
		power, ok := binaryPower[op]
		if !ok {
			return nil, p.syntaxError(t)
		}
		if power <= minPower {
			return left, nil
		}
		p.next()
		var right Expr
		if op == "in" {
			right, err = p.list()
		} else {
			right, err = p.expr(power)
		}
		if err != nil {
			return nil, err
		}
		left = &BinaryExpr{Op: op, X: left, Y: right}
	}
}

func (p *parser) unary() (Expr, error) {
	if t := p.peek(); t.kind == tokIdent && strings.EqualFold(t.raw, "not") {
		// "not" followed by an operator or the end is a property named not.
		if n := p.toks[p.i+1]; n.kind != tokEOF && n.kind != tokRParen && n.kind != tokComma &&
			!(n.kind == tokIdent && binaryPower[strings.ToLower(n.raw)] != 0) {
			p.next()
			p.depth++
			defer func() { p.depth-- }()
			if p.depth > maxDepth {
				return nil, errorf("The $filter expression in '%s' is nested too deeply.", p.text)
			}
			x, err := p.unary()
			if err != nil {
				return nil, err
			}
			return &NotExpr{X: x}, nil
		}
	}
	return p.primary()
}

func (p *parser) list() (Expr, error) {
	if _, err := p.expect(tokLParen, "'('"); err != nil {
		return nil, err
	}
	var items []Expr
	for {
		t := p.next()
		lit, ok := literalOf(t)
		if !ok {
			return nil, errorf("A literal was expected at position %d in '%s'.", t.pos, p.text)
		}
		items = append(items, lit)
		t = p.next()
		if t.kind == tokRParen {
			return &ListExpr{Items: items}, nil
		}
		if t.kind != tokComma {
			return nil, errorf("')' or ',' expected at position %d in '%s'.", t.pos, p.text)
		}
	}
}

func (p *parser) primary() (Expr, error) {
	t := p.next()
	if lit, ok := literalOf(t); ok {
		return lit, nil
	}
	switch t.kind {
	case tokLParen:
		e, err := p.expr(0)
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen, "')' or operator"); err != nil {
			return nil, err
		}
		return e, nil
	case tokIdent:
		if p.peek().kind == tokLParen {
			return p.call(t)
		}
		return p.path(t)
	}
	return nil, errorf("Expression expected at position %d in '%s'.", t.pos, p.text)
}

func (p *parser) call(name token) (Expr, error) {
	p.next() // (
	c := &CallExpr{Func: name.raw, Pos: name.pos}
	if p.peek().kind == tokRParen {
		p.next()
		return c, nil
	}
	for {
		a, err := p.expr(0)
		if err != nil {
			return nil, err
		}
		c.Args = append(c.Args, a)
		t := p.next()
		if t.kind == tokRParen {
			return c, nil
		}
		if t.kind != tokComma {
			return nil, errorf("')' or ',' expected at position %d in '%s'.", t.pos, p.text)
		}
	}
}

// path reads prop, prop/sub/..., and prop/any(...) or prop/all(...).
func (p *parser) path(first token) (Expr, error) {
	id := Ident{Name: first.raw, Pos: first.pos}
	for p.peek().kind == tokSlash {
		p.next()
		seg, err := p.expect(tokIdent, "Identifier")
		if err != nil {
			return nil, err
		}
		fn := strings.ToLower(seg.raw)
		if (fn == "any" || fn == "all") && p.peek().kind == tokLParen {
			return p.lambda(id, fn)
		}
		id.Name += "/" + seg.raw
	}
	return &id, nil
}

func (p *parser) lambda(coll Ident, fn string) (Expr, error) {
	p.next() // (
	l := &LambdaExpr{Collection: coll, Func: fn}
	if p.peek().kind == tokRParen {
		p.next()
		if fn == "all" {
			return nil, errorf("The all() function requires a lambda expression at position %d in '%s'.", p.peek().pos, p.text)
		}
		return l, nil
	}
	v, err := p.expect(tokIdent, "Range variable")
	if err != nil {
		return nil, err
	}
	if _, err := p.expect(tokColon, "':'"); err != nil {
		return nil, err
	}
	l.Var = v.raw
	body, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	l.Body = body
	if _, err := p.expect(tokRParen, "')' or operator"); err != nil {
		return nil, err
	}
	return l, nil
}

func literalOf(t token) (*Literal, bool) {
	switch t.kind {
	case tokString:
		return &Literal{Kind: LitString, Raw: t.raw, Str: t.str, Pos: t.pos}, true
	case tokGuid:
		return &Literal{Kind: LitGuid, Raw: t.raw, Str: strings.ToLower(t.raw), Pos: t.pos}, true
	case tokDateTime:
		tm, _ := parseDateTime(t.raw)
		return &Literal{Kind: LitDateTime, Raw: t.raw, Time: tm, Pos: t.pos}, true
	case tokNumber:
		if n, err := strconv.ParseInt(t.raw, 10, 64); err == nil {
			return &Literal{Kind: LitInt, Raw: t.raw, Int: n, Float: float64(n), Pos: t.pos}, true
		}
		f, err := strconv.ParseFloat(t.raw, 64)
		if err != nil {
			// Out of range: keep the text; Compile rejects it.
			return &Literal{Kind: LitFloat, Raw: t.raw, Float: f, Pos: t.pos}, true
		}
		return &Literal{Kind: LitFloat, Raw: t.raw, Float: f, Pos: t.pos}, true
	case tokIdent:
		switch t.raw {
		case "null":
			return &Literal{Kind: LitNull, Raw: "null", Pos: t.pos}, true
		case "true":
			return &Literal{Kind: LitBool, Raw: "true", Bool: true, Pos: t.pos}, true
		case "false":
			return &Literal{Kind: LitBool, Raw: "false", Pos: t.pos}, true
		}
	}
	return nil, false
}
