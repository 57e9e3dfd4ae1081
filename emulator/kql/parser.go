package kql

import "encoding/json"

// maxDepth bounds expression nesting, so that no input can exhaust the stack.
const maxDepth = 200

type parser struct {
	toks  []token
	i     int
	depth int
}

// Parse parses a query.
func Parse(src string) (*Query, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	q, err := p.query()
	if err != nil {
		return nil, err
	}
	return q, nil
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) unexpected(t token, want string) *SyntaxError {
	return syntaxErr(t.pos, "expected %s, found %s", want, t)
}

func (p *parser) expectPunct(s string) (token, error) {
	t := p.next()
	if !t.is(tPunct, s) {
		return t, p.unexpected(t, "'"+s+"'")
	}
	return t, nil
}

func (p *parser) keyword(word string) bool {
	if p.peek().is(tIdent, word) {
		p.i++
		return true
	}
	return false
}

func (p *parser) query() (*Query, error) {
	t := p.next()
	if t.kind != tIdent || isKeyword(t.text) {
		return nil, p.unexpected(t, "a table name")
	}
	q := &Query{Table: t.text, TablePos: t.pos}
	for p.peek().is(tPunct, "|") {
		p.next()
		op, err := p.operator()
		if err != nil {
			return nil, err
		}
		q.Ops = append(q.Ops, op)
	}
	for p.peek().is(tPunct, ";") {
		p.next()
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.unexpected(t, "'|' or the end of the query")
	}
	return q, nil
}

var keywords = map[string]bool{
	"where": true, "filter": true, "project": true, "extend": true, "summarize": true, "by": true, "order": true,
	"sort": true, "take": true, "limit": true, "top": true, "distinct": true, "and": true, "or": true,
	"asc": true, "desc": true, "has": true, "contains": true, "startswith": true, "endswith": true, "in": true,
}

func isKeyword(s string) bool { return keywords[s] }

func (p *parser) operator() (Op, error) {
	t := p.next()
	if t.kind != tIdent {
		return nil, p.unexpected(t, "a tabular operator")
	}
	switch t.text {
	case "where", "filter":
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		return &WhereOp{Pred: e}, nil
	case "project":
		items, err := p.namedList(false)
		if err != nil {
			return nil, err
		}
		return &ProjectOp{Items: items}, nil
	case "extend":
		items, err := p.namedList(false)
		if err != nil {
			return nil, err
		}
		return &ExtendOp{Items: items}, nil
	case "project-away":
		var names []*Ident
		for {
			id, err := p.ident()
			if err != nil {
				return nil, err
			}
			names = append(names, id)
			if !p.peek().is(tPunct, ",") {
				return &ProjectAwayOp{Names: names}, nil
			}
			p.next()
		}
	case "project-rename":
		var rs []Rename
		for {
			n, err := p.ident()
			if err != nil {
				return nil, err
			}
			if _, err := p.expectPunct("="); err != nil {
				return nil, err
			}
			old, err := p.ident()
			if err != nil {
				return nil, err
			}
			rs = append(rs, Rename{New: n.Name, Old: old})
			if !p.peek().is(tPunct, ",") {
				return &ProjectRenameOp{Renames: rs}, nil
			}
			p.next()
		}
	case "summarize":
		op := &SummarizeOp{}
		if !p.peek().is(tIdent, "by") {
			items, err := p.namedList(true)
			if err != nil {
				return nil, err
			}
			op.Aggs = items
		}
		if p.keyword("by") {
			items, err := p.namedList(false)
			if err != nil {
				return nil, err
			}
			op.By = items
		}
		if len(op.Aggs) == 0 && len(op.By) == 0 {
			return nil, p.unexpected(p.peek(), "an aggregation or 'by'")
		}
		return op, nil
	case "order", "sort":
		if !p.keyword("by") {
			return nil, p.unexpected(p.peek(), "'by'")
		}
		var keys []SortKey
		for {
			k, err := p.sortKey()
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
			if !p.peek().is(tPunct, ",") {
				return &SortOp{Keys: keys}, nil
			}
			p.next()
		}
	case "take", "limit":
		n, err := p.count()
		if err != nil {
			return nil, err
		}
		return &TakeOp{N: n}, nil
	case "top":
		n, err := p.count()
		if err != nil {
			return nil, err
		}
		if !p.keyword("by") {
			return nil, p.unexpected(p.peek(), "'by'")
		}
		k, err := p.sortKey()
		if err != nil {
			return nil, err
		}
		return &TopOp{N: n, Key: k}, nil
	case "distinct":
		if p.peek().is(tPunct, "*") {
			p.next()
			return &DistinctOp{All: true}, nil
		}
		var cols []*Ident
		for {
			id, err := p.ident()
			if err != nil {
				return nil, err
			}
			cols = append(cols, id)
			if !p.peek().is(tPunct, ",") {
				return &DistinctOp{Cols: cols}, nil
			}
			p.next()
		}
	case "count":
		return &CountOp{}, nil
	}
	return nil, syntaxErr(t.pos, "unknown or unsupported tabular operator '%s'", t.text)
}

func (p *parser) ident() (*Ident, error) {
	t := p.next()
	if t.kind != tIdent || isKeyword(t.text) {
		return nil, p.unexpected(t, "a column name")
	}
	return &Ident{Name: t.text, Pos: t.pos}, nil
}

func (p *parser) count() (int64, error) {
	t := p.next()
	if t.kind != tLong || t.n < 0 {
		return 0, p.unexpected(t, "a row count")
	}
	return t.n, nil
}

func (p *parser) sortKey() (SortKey, error) {
	e, err := p.expr()
	if err != nil {
		return SortKey{}, err
	}
	k := SortKey{Expr: e}
	switch {
	case p.keyword("asc"):
		k.Asc = true
	case p.keyword("desc"):
	}
	k.NullsFirst = k.Asc
	if p.keyword("nulls") {
		switch {
		case p.keyword("first"):
			k.NullsFirst = true
		case p.keyword("last"):
			k.NullsFirst = false
		default:
			return k, p.unexpected(p.peek(), "'first' or 'last'")
		}
	}
	return k, nil
}

// namedList reads "[Name =] expr, ..." up to a pipe, 'by' (in summarize)
// or the end.
func (p *parser) namedList(stopAtBy bool) ([]NamedExpr, error) {
	var items []NamedExpr
	for {
		var item NamedExpr
		if t := p.peek(); t.kind == tIdent && !isKeyword(t.text) && p.toks[p.i+1].is(tPunct, "=") {
			item.Name = t.text
			p.i += 2
		}
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		item.Expr = e
		items = append(items, item)
		if !p.peek().is(tPunct, ",") {
			break
		}
		p.next()
		if stopAtBy && p.peek().is(tIdent, "by") {
			return nil, p.unexpected(p.peek(), "an expression")
		}
	}
	return items, nil
}

func (p *parser) enter(pos int) error {
	p.depth++
	if p.depth > maxDepth {
		return syntaxErr(pos, "expression nested too deeply")
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

func (p *parser) expr() (Expr, error) { return p.or() }

func (p *parser) or() (Expr, error) {
	if err := p.enter(p.peek().pos); err != nil {
		return nil, err
	}
	defer p.leave()
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.peek().is(tIdent, "or") {
		t := p.next()
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = &Binary{Op: "or", L: l, R: r, Pos: t.pos}
	}
	return l, nil
}

func (p *parser) and() (Expr, error) {
	l, err := p.comparison()
	if err != nil {
		return nil, err
	}
	for p.peek().is(tIdent, "and") {
		t := p.next()
		r, err := p.comparison()
		if err != nil {
			return nil, err
		}
		l = &Binary{Op: "and", L: l, R: r, Pos: t.pos}
	}
	return l, nil
}

// comparisonOps are the binary operators of the comparison level.
var comparisonOps = map[string]bool{
	"==": true, "!=": true, "<>": true, "<": true, "<=": true, ">": true, ">=": true, "=~": true, "!~": true,
	"has": true, "has_cs": true, "contains": true, "contains_cs": true, "startswith": true, "startswith_cs": true,
	"endswith": true, "endswith_cs": true, "hasprefix": true, "hassuffix": true,
	"!has": true, "!has_cs": true, "!contains": true, "!contains_cs": true, "!startswith": true,
	"!startswith_cs": true, "!endswith": true, "!endswith_cs": true, "!hasprefix": true, "!hassuffix": true,
}

var listOps = map[string]bool{"in": true, "!in": true, "in~": true, "!in~": true, "has_any": true, "has_all": true}

func (p *parser) comparison() (Expr, error) {
	l, err := p.additive()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	if t.kind != tPunct && t.kind != tOp && t.kind != tIdent {
		return l, nil
	}
	op := t.text
	switch {
	case op == "between" || op == "!between":
		p.next()
		return p.between(l, op == "!between", t.pos)
	case op == "matches":
		p.next()
		if !p.keyword("regex") {
			return nil, p.unexpected(p.peek(), "'regex'")
		}
		r, err := p.additive()
		if err != nil {
			return nil, err
		}
		return &Binary{Op: "matches regex", L: l, R: r, Pos: t.pos}, nil
	case listOps[op]:
		p.next()
		list, err := p.parenList()
		if err != nil {
			return nil, err
		}
		return &ListOp{Op: op, X: l, List: list, Pos: t.pos}, nil
	case comparisonOps[op]:
		if op == "<>" {
			op = "!="
		}
		p.next()
		r, err := p.additive()
		if err != nil {
			return nil, err
		}
		return &Binary{Op: op, L: l, R: r, Pos: t.pos}, nil
	}
	return l, nil
}

func (p *parser) between(x Expr, not bool, pos int) (Expr, error) {
	if _, err := p.expectPunct("("); err != nil {
		return nil, err
	}
	lo, err := p.additive()
	if err != nil {
		return nil, err
	}
	if _, err := p.expectPunct(".."); err != nil {
		return nil, err
	}
	hi, err := p.additive()
	if err != nil {
		return nil, err
	}
	if _, err := p.expectPunct(")"); err != nil {
		return nil, err
	}
	return &Between{X: x, Lo: lo, Hi: hi, Not: not, Pos: pos}, nil
}

func (p *parser) parenList() ([]Expr, error) {
	if _, err := p.expectPunct("("); err != nil {
		return nil, err
	}
	var list []Expr
	if p.peek().is(tPunct, ")") {
		p.next()
		return list, nil
	}
	for {
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		list = append(list, e)
		t := p.next()
		if t.is(tPunct, ")") {
			return list, nil
		}
		if !t.is(tPunct, ",") {
			return nil, p.unexpected(t, "',' or ')'")
		}
	}
}

func (p *parser) additive() (Expr, error) {
	l, err := p.multiplicative()
	if err != nil {
		return nil, err
	}
	for t := p.peek(); t.is(tPunct, "+") || t.is(tPunct, "-"); t = p.peek() {
		p.next()
		r, err := p.multiplicative()
		if err != nil {
			return nil, err
		}
		l = &Binary{Op: t.text, L: l, R: r, Pos: t.pos}
	}
	return l, nil
}

func (p *parser) multiplicative() (Expr, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for t := p.peek(); t.is(tPunct, "*") || t.is(tPunct, "/") || t.is(tPunct, "%"); t = p.peek() {
		p.next()
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = &Binary{Op: t.text, L: l, R: r, Pos: t.pos}
	}
	return l, nil
}

func (p *parser) unary() (Expr, error) {
	if t := p.peek(); t.is(tPunct, "-") || t.is(tPunct, "+") {
		p.next()
		if err := p.enter(t.pos); err != nil {
			return nil, err
		}
		defer p.leave()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		if t.text == "+" {
			return x, nil
		}
		return &Unary{Op: "-", X: x, Pos: t.pos}, nil
	}
	return p.postfix()
}

func (p *parser) postfix() (Expr, error) {
	x, err := p.primary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		switch {
		case t.is(tPunct, "["):
			p.next()
			k, err := p.expr()
			if err != nil {
				return nil, err
			}
			if _, err := p.expectPunct("]"); err != nil {
				return nil, err
			}
			x = &Index{X: x, Key: k, Pos: t.pos}
		case t.is(tPunct, "."):
			p.next()
			n := p.next()
			if n.kind != tIdent {
				return nil, p.unexpected(n, "a property name")
			}
			x = &Index{X: x, Key: &Literal{Val: StringValue(n.text), Pos: n.pos}, Pos: t.pos}
		default:
			return x, nil
		}
	}
}

func (p *parser) primary() (Expr, error) {
	t := p.next()
	switch t.kind {
	case tString:
		return &Literal{Val: StringValue(t.text), Pos: t.pos}, nil
	case tLong:
		return &Literal{Val: LongValue(t.n), Pos: t.pos}, nil
	case tReal:
		return &Literal{Val: RealValue(t.f), Pos: t.pos}, nil
	case tSpan:
		return &Literal{Val: Value{Kind: TimeSpan, I: t.n}, Pos: t.pos}, nil
	case tDateTime:
		if t.text == "null" {
			return &Literal{Val: Value{}, Pos: t.pos}, nil
		}
		return &Literal{Val: Value{Kind: DateTime, I: t.n}, Pos: t.pos}, nil
	case tDynamic:
		var v any
		if err := json.Unmarshal([]byte(t.text), &v); err != nil {
			return nil, syntaxErr(t.pos, "invalid dynamic literal")
		}
		return &Literal{Val: DynamicValue(v), Pos: t.pos}, nil
	case tPunct:
		switch t.text {
		case "(":
			if err := p.enter(t.pos); err != nil {
				return nil, err
			}
			defer p.leave()
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			if _, err := p.expectPunct(")"); err != nil {
				return nil, err
			}
			return e, nil
		case "*":
			return &Star{Pos: t.pos}, nil
		}
	case tIdent:
		switch t.text {
		case "true":
			return &Literal{Val: BoolValue(true), Pos: t.pos}, nil
		case "false":
			return &Literal{Val: BoolValue(false), Pos: t.pos}, nil
		case "null":
			return &Literal{Val: Value{}, Pos: t.pos}, nil
		}
		if isKeyword(t.text) {
			break
		}
		if p.peek().is(tPunct, "(") {
			if err := p.enter(t.pos); err != nil {
				return nil, err
			}
			defer p.leave()
			args, err := p.parenList()
			if err != nil {
				return nil, err
			}
			return &Call{Name: t.text, Args: args, Pos: t.pos}, nil
		}
		return &Ident{Name: t.text, Pos: t.pos}, nil
	}
	return nil, p.unexpected(t, "an expression")
}
