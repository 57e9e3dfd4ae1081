package kql

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// A stage is one operator at run time. Rows are pushed in order; done
// says the input has ended, and a blocking stage then emits what it held.
// push returns errStop when no more rows are wanted.
type stage interface {
	push(row []Value) error
	done() error
}

var errStop = errors.New("kql: no more rows wanted")

// runtime is the state of one run shared by its stages.
type runtime struct {
	ctx     context.Context
	maxHeld int
	maxRows int
	held    int
	scanned int64
}

// hold accounts for n more rows held by a blocking stage.
func (rt *runtime) hold(n int) error {
	rt.held += n
	if rt.held > rt.maxHeld {
		return &LimitError{Held: rt.maxHeld}
	}
	return nil
}

// collector is the last stage: it keeps up to max rows.
type collector struct {
	max       int
	rows      [][]Value
	truncated bool
}

func (c *collector) push(row []Value) error {
	if len(c.rows) >= c.max {
		c.truncated = true
		return errStop
	}
	c.rows = append(c.rows, row)
	return nil
}

func (c *collector) done() error { return nil }

// emitAll pushes rows to next, stopping quietly when next wants no more.
func emitAll(next stage, rows [][]Value) error {
	for _, r := range rows {
		if err := next.push(r); err != nil {
			if errors.Is(err, errStop) {
				break
			}
			return err
		}
	}
	return next.done()
}

// funcStage is a streaming stage built from a function.
type funcStage struct {
	next stage
	fn   func(row []Value) ([]Value, bool)
}

func (s *funcStage) push(row []Value) error {
	out, ok := s.fn(row)
	if !ok {
		return nil
	}
	return s.next.push(out)
}

func (s *funcStage) done() error { return s.next.done() }

func whereBuilder(pred cexpr) stageBuilder {
	return func(_ *runtime, next stage) stage {
		return &funcStage{next: next, fn: func(row []Value) ([]Value, bool) { return row, pred.eval(row).truthy() }}
	}
}

// itemName is the output name of a project or extend item: its own, the
// column's it repeats, or Column1, Column2 … for a computed one.
func itemName(it NamedExpr, taken map[string]bool, auto *int) string {
	if it.Name != "" {
		return it.Name
	}
	if id, ok := it.Expr.(*Ident); ok {
		return id.Name
	}
	return autoName(taken, auto)
}

// autoName names the n-th unnamed computed column, as Kusto does.
func autoName(sc map[string]bool, n *int) string {
	for {
		*n++
		name := fmt.Sprintf("Column%d", *n)
		if !sc[name] {
			return name
		}
	}
}

func compileProject(c *compiler, items []NamedExpr) (*scope, stageBuilder, []int, error) {
	cols := make([]Column, 0, len(items))
	exprs := make([]cexpr, 0, len(items))
	names := map[string]bool{}
	auto := 0
	for _, it := range items {
		x, err := c.compile(it.Expr)
		if err != nil {
			return nil, nil, nil, err
		}
		name := itemName(it, names, &auto)
		if names[name] {
			return nil, nil, nil, c.errorf("the column '%s' is projected more than once", name)
		}
		names[name] = true
		cols = append(cols, Column{name, exprType(x)})
		exprs = append(exprs, x)
	}
	b := func(_ *runtime, next stage) stage {
		return &funcStage{next: next, fn: func(row []Value) ([]Value, bool) {
			out := make([]Value, len(exprs))
			for i, x := range exprs {
				out[i] = x.eval(row)
			}
			return out, true
		}}
	}
	return newScope(cols), b, unionCols(exprs...), nil
}

// exprType is the column type of an expression: a bare null is a string.
func exprType(x cexpr) Type {
	if x.typ == Null {
		return String
	}
	return x.typ
}

func compileExtend(c *compiler, items []NamedExpr) (*scope, stageBuilder, []int, error) {
	cols := slices.Clone(c.sc.cols)
	sc := newScope(cols)
	type assign struct {
		at int
		x  cexpr
	}
	var assigns []assign
	names := map[string]bool{}
	for _, col := range cols {
		names[col.Name] = true
	}
	auto := 0
	for _, it := range items {
		// Later items may use earlier ones.
		ic := &compiler{op: c.op, sc: sc, now: c.now}
		x, err := ic.compile(it.Expr)
		if err != nil {
			return nil, nil, nil, err
		}
		name := itemName(it, names, &auto)
		at, exists := sc.index[name]
		if !exists {
			at = len(cols)
			cols = append(cols, Column{name, exprType(x)})
		} else {
			cols[at] = Column{name, exprType(x)}
		}
		names[name] = true
		sc = newScope(cols)
		assigns = append(assigns, assign{at, x})
	}
	width := len(cols)
	b := func(_ *runtime, next stage) stage {
		return &funcStage{next: next, fn: func(row []Value) ([]Value, bool) {
			out := make([]Value, width)
			copy(out, row)
			for _, a := range assigns {
				out[a.at] = a.x.eval(out)
			}
			return out, true
		}}
	}
	var refs []int
	for _, a := range assigns {
		refs = append(refs, a.x.cols...)
	}
	return sc, b, refs, nil
}

func compileProjectAway(c *compiler, ids []*Ident) (*scope, stageBuilder, []int, error) {
	drop := map[int]bool{}
	for _, id := range ids {
		i, ok := c.sc.index[id.Name]
		if !ok {
			return nil, nil, nil, c.errorf("Failed to resolve scalar expression named '%s'", id.Name)
		}
		drop[i] = true
	}
	var keep []int
	var cols []Column
	for i, col := range c.sc.cols {
		if !drop[i] {
			keep = append(keep, i)
			cols = append(cols, col)
		}
	}
	b := func(_ *runtime, next stage) stage {
		return &funcStage{next: next, fn: func(row []Value) ([]Value, bool) {
			out := make([]Value, len(keep))
			for j, i := range keep {
				out[j] = row[i]
			}
			return out, true
		}}
	}
	return newScope(cols), b, keep, nil
}

func compileRename(c *compiler, rs []Rename) (*scope, error) {
	cols := slices.Clone(c.sc.cols)
	for _, r := range rs {
		i, ok := c.sc.index[r.Old.Name]
		if !ok {
			return nil, c.errorf("Failed to resolve scalar expression named '%s'", r.Old.Name)
		}
		cols[i].Name = r.New
	}
	seen := map[string]bool{}
	for _, col := range cols {
		if seen[col.Name] {
			return nil, c.errorf("the column '%s' would appear twice", col.Name)
		}
		seen[col.Name] = true
	}
	return newScope(cols), nil
}

// uniqueNames makes output names unique the way Kusto does: a repeated
// name gets a number appended ("DeviceId1").
func uniqueNames(cols []Column) {
	seen := map[string]bool{}
	for i := range cols {
		name := cols[i].Name
		for n := 1; seen[name]; n++ {
			name = fmt.Sprintf("%s%d", cols[i].Name, n)
		}
		cols[i].Name = name
		seen[name] = true
	}
}

func compileSummarize(c *compiler, op *SummarizeOp) (*scope, stageBuilder, opUse, error) {
	var keys []cexpr
	var cols []Column
	byNames := map[string]bool{}
	auto := 0
	for _, it := range op.By {
		x, err := c.compile(it.Expr)
		if err != nil {
			return nil, nil, opUse{}, err
		}
		name := it.Name
		if name == "" {
			switch e := it.Expr.(type) {
			case *Ident:
				name = e.Name
			case *Call:
				if (e.Name == "bin" || e.Name == "floor") && len(e.Args) > 0 {
					if id, ok := e.Args[0].(*Ident); ok {
						name = id.Name
					}
				}
			}
			if name == "" {
				name = autoName(byNames, &auto)
			}
		}
		byNames[name] = true
		keys = append(keys, x)
		cols = append(cols, Column{name, exprType(x)})
	}
	var aggs []aggregate
	for _, it := range op.Aggs {
		call, ok := it.Expr.(*Call)
		if !ok {
			return nil, nil, opUse{}, c.errorf("summarize needs aggregation functions such as count() or arg_max(); found an expression")
		}
		spec, ok := aggFuncs[call.Name]
		if !ok {
			if _, scalar := scalarFuncs[call.Name]; scalar {
				return nil, nil, opUse{}, c.errorf("'%s' is not an aggregation function", call.Name)
			}
			return nil, nil, opUse{}, c.errorf("Unknown function: '%s'.", call.Name)
		}
		if len(call.Args) < spec.min || (spec.max >= 0 && len(call.Args) > spec.max) {
			return nil, nil, opUse{}, c.errorf("function '%s' takes %s, not %d", call.Name, arity(spec.min, spec.max), len(call.Args))
		}
		a, err := spec.build(c, call, it.Name, byNames)
		if err != nil {
			return nil, nil, opUse{}, err
		}
		aggs = append(aggs, a)
		cols = append(cols, a.cols...)
	}
	uniqueNames(cols)
	width := len(cols)
	b := func(rt *runtime, next stage) stage {
		return &summarizeStage{rt: rt, next: next, keys: keys, aggs: aggs, width: width, groups: map[string]*group{}}
	}
	use := opUse{refs: unionCols(keys...), ends: true, copies: true}
	for _, a := range aggs {
		use.refs = append(use.refs, a.refs...)
	}
	return newScope(cols), b, use, nil
}

type group struct {
	keys   []Value
	states []aggState
}

type summarizeStage struct {
	rt     *runtime
	next   stage
	keys   []cexpr
	aggs   []aggregate
	width  int
	groups map[string]*group
	order  []*group
	buf    []byte
	vals   []Value
}

func (s *summarizeStage) push(row []Value) error {
	s.buf = s.buf[:0]
	s.vals = s.vals[:0]
	for _, k := range s.keys {
		v := k.eval(row)
		s.vals = append(s.vals, v)
		s.buf = appendKey(s.buf, v)
	}
	g, ok := s.groups[string(s.buf)]
	if !ok {
		if err := s.rt.hold(1); err != nil {
			return err
		}
		g = &group{keys: slices.Clone(s.vals), states: make([]aggState, len(s.aggs))}
		for i, a := range s.aggs {
			g.states[i] = a.fresh()
		}
		s.groups[string(s.buf)] = g
		s.order = append(s.order, g)
	}
	for _, st := range g.states {
		st.add(row)
	}
	return nil
}

func (s *summarizeStage) done() error {
	if len(s.keys) == 0 && len(s.order) == 0 {
		// A summarize without by always makes one row: count() of nothing is 0.
		g := &group{states: make([]aggState, len(s.aggs))}
		for i, a := range s.aggs {
			g.states[i] = a.fresh()
		}
		s.order = append(s.order, g)
	}
	for _, g := range s.order {
		out := make([]Value, 0, s.width)
		out = append(out, g.keys...)
		for _, st := range g.states {
			out = st.emit(out)
		}
		if err := s.next.push(out); err != nil {
			if errors.Is(err, errStop) {
				break
			}
			return err
		}
	}
	s.groups, s.order = nil, nil
	return s.next.done()
}

type compiledKey struct {
	x          cexpr
	asc        bool
	nullsFirst bool
}

func compileKeys(c *compiler, keys []SortKey) ([]compiledKey, error) {
	out := make([]compiledKey, len(keys))
	for i, k := range keys {
		x, err := c.compile(k.Expr)
		if err != nil {
			return nil, err
		}
		out[i] = compiledKey{x: x, asc: k.Asc, nullsFirst: k.NullsFirst}
	}
	return out, nil
}

// sortedRow is a row with its evaluated sort keys and arrival number (the
// tie-breaker that keeps sorting deterministic).
type sortedRow struct {
	keys []Value
	row  []Value
	seq  int
}

func compareKeys(keys []compiledKey, a, b *sortedRow) int {
	for i, k := range keys {
		x, y := a.keys[i], b.keys[i]
		var c int
		switch {
		case x.Kind == Null && y.Kind == Null:
			c = 0
		case x.Kind == Null || y.Kind == Null:
			c = 1
			if (x.Kind == Null) == k.nullsFirst {
				c = -1
			}
			return c
		default:
			var ok bool
			if c, ok = orderValues(x, y); !ok {
				c = strings.Compare(x.Text(), y.Text())
			}
			if !k.asc {
				c = -c
			}
		}
		if c != 0 {
			return c
		}
	}
	return a.seq - b.seq
}

// sortStage sorts its input. limit ≥ 0 keeps only the first limit rows
// (top, or a sort followed by take); capped keeps one more row than the
// result can hold, for a sort whose output goes straight to the result.
func sortBuilder(keys []compiledKey, limit int64, capped bool) stageBuilder {
	return func(rt *runtime, next stage) stage {
		s := &sortStage{rt: rt, next: next, keys: keys, limit: -1}
		switch {
		case limit >= 0:
			s.limit = int(min(limit, int64(rt.maxHeld)))
		case capped:
			s.limit = rt.maxRows + 1
		}
		return s
	}
}

type sortStage struct {
	rt    *runtime
	next  stage
	keys  []compiledKey
	limit int // -1: keep everything
	rows  []*sortedRow
	seq   int
}

// Len, Less, Swap, Push and Pop make rows a max-heap (worst row on top)
// while a limit applies.
func (s *sortStage) Len() int           { return len(s.rows) }
func (s *sortStage) Less(i, j int) bool { return compareKeys(s.keys, s.rows[i], s.rows[j]) > 0 }
func (s *sortStage) Swap(i, j int)      { s.rows[i], s.rows[j] = s.rows[j], s.rows[i] }
func (s *sortStage) Push(x any)         { s.rows = append(s.rows, x.(*sortedRow)) }
func (s *sortStage) Pop() any {
	r := s.rows[len(s.rows)-1]
	s.rows = s.rows[:len(s.rows)-1]
	return r
}

func (s *sortStage) push(row []Value) error {
	if s.limit == 0 {
		return nil
	}
	r := &sortedRow{keys: make([]Value, len(s.keys)), row: row, seq: s.seq}
	s.seq++
	for i, k := range s.keys {
		r.keys[i] = k.x.eval(row)
	}
	if s.limit > 0 && len(s.rows) >= s.limit {
		if compareKeys(s.keys, r, s.rows[0]) < 0 {
			s.rows[0] = r
			heap.Fix(s, 0)
		}
		return nil
	}
	if err := s.rt.hold(1); err != nil {
		return err
	}
	if s.limit > 0 {
		heap.Push(s, r)
		return nil
	}
	s.rows = append(s.rows, r)
	return nil
}

func (s *sortStage) done() error {
	slices.SortFunc(s.rows, func(a, b *sortedRow) int { return compareKeys(s.keys, a, b) })
	out := make([][]Value, len(s.rows))
	for i, r := range s.rows {
		out[i] = r.row
	}
	s.rows = nil
	return emitAll(s.next, out)
}

type takeStage struct {
	next stage
	left int64
}

func takeBuilder(n int64) stageBuilder {
	return func(_ *runtime, next stage) stage { return &takeStage{next: next, left: n} }
}

func (s *takeStage) push(row []Value) error {
	if s.left <= 0 {
		return errStop
	}
	s.left--
	if err := s.next.push(row); err != nil {
		return err
	}
	if s.left == 0 {
		return errStop
	}
	return nil
}

func (s *takeStage) done() error { return s.next.done() }

func compileDistinct(c *compiler, op *DistinctOp) (*scope, stageBuilder, []int, error) {
	var idx []int
	var cols []Column
	if op.All {
		for i, col := range c.sc.cols {
			idx = append(idx, i)
			cols = append(cols, col)
		}
	}
	for _, id := range op.Cols {
		i, ok := c.sc.index[id.Name]
		if !ok {
			return nil, nil, nil, c.errorf("Failed to resolve scalar expression named '%s'", id.Name)
		}
		idx = append(idx, i)
		cols = append(cols, c.sc.cols[i])
	}
	uniqueNames(cols)
	b := func(rt *runtime, next stage) stage {
		seen := map[string]struct{}{}
		var buf []byte
		return &funcStageErr{next: next, fn: func(row []Value) ([]Value, bool, error) {
			buf = buf[:0]
			for _, i := range idx {
				buf = appendKey(buf, row[i])
			}
			if _, dup := seen[string(buf)]; dup {
				return nil, false, nil
			}
			if err := rt.hold(1); err != nil {
				return nil, false, err
			}
			seen[string(buf)] = struct{}{}
			out := make([]Value, len(idx))
			for j, i := range idx {
				out[j] = row[i]
			}
			return out, true, nil
		}}
	}
	return newScope(cols), b, idx, nil
}

// funcStageErr is a streaming stage whose function may fail.
type funcStageErr struct {
	next stage
	fn   func(row []Value) ([]Value, bool, error)
}

func (s *funcStageErr) push(row []Value) error {
	out, ok, err := s.fn(row)
	if err != nil || !ok {
		return err
	}
	return s.next.push(out)
}

func (s *funcStageErr) done() error { return s.next.done() }

type countStage struct {
	next stage
	n    int64
}

func countBuilder() stageBuilder {
	return func(_ *runtime, next stage) stage { return &countStage{next: next} }
}

func (s *countStage) push([]Value) error { s.n++; return nil }
func (s *countStage) done() error {
	return emitAll(s.next, [][]Value{{LongValue(s.n)}})
}
