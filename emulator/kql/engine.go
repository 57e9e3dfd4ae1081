package kql

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"
)

// Table is a source of rows. Rows are produced lazily by Scan, which hands
// each to emit and stops, returning emit's error, as soon as emit returns
// one. A row handed to emit belongs to the engine: the table must not
// change or reuse it, unless Filter.Reuse says it may.
type Table interface {
	Name() string
	Columns() []Column
	// PartitionColumns names the columns whose values are the same for
	// every row of one partition (for a device table: DeviceId,
	// DeviceName). Scan may skip a partition for which f.Partition, given
	// a row with only these columns set, is false.
	PartitionColumns() []string
	Scan(ctx context.Context, f Filter, emit func(row []Value) error) error
}

// Filter is what the query's leading where clauses let a table skip. It
// is an optimisation only: the where clauses still run on every row.
type Filter struct {
	// Now is the query's now(): tables that hold a moving window of data
	// (the last 30 days) cut it relative to this.
	Now time.Time
	// Partition, when not nil, says whether a partition may hold matching
	// rows; it reads only the table's partition columns.
	Partition func(row []Value) bool
	// From and To bound Timestamp (inclusive); zero is open.
	From, To time.Time
	// Row, when not nil, is the leading where clauses in full: a table may
	// test a row it builds in a scratch buffer and hand over only the rows
	// that pass, saving the copies of those that do not.
	Row func(row []Value) bool
	// Columns, when not nil, says which columns the query reads; a table
	// may leave the others null.
	Columns []bool
	// Reuse says that the engine copies what it keeps of a row before emit
	// returns, so the table may hand over the same buffer every time.
	Reuse bool
}

// Catalog holds the tables that queries can read. Register tables before
// queries run; it is not safe to register concurrently with queries.
type Catalog struct {
	tables map[string]Table
}

// NewCatalog returns an empty catalog.
func NewCatalog() *Catalog { return &Catalog{tables: map[string]Table{}} }

// Register adds a table; a second table of the same name is an error.
func (c *Catalog) Register(t Table) error {
	if _, dup := c.tables[t.Name()]; dup {
		return fmt.Errorf("kql: table %s is registered twice", t.Name())
	}
	c.tables[t.Name()] = t
	return nil
}

// Table returns the table of that name.
func (c *Catalog) Table(name string) (Table, bool) {
	t, ok := c.tables[name]
	return t, ok
}

// Names lists the registered tables, sorted.
func (c *Catalog) Names() []string {
	var out []string
	for n := range c.tables {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Options bound a run.
type Options struct {
	// Now is the query's now(); zero means time.Now().
	Now time.Time
	// MaxRows caps the result (the service's 100,000 by default); the rows
	// past it are dropped and Result.Truncated is set.
	MaxRows int
	// MaxHeldRows bounds the rows and groups that summarize, sort and
	// distinct may hold at once (default 5,000,000); past it the query
	// fails with *LimitError, as the service stops queries that need too
	// much memory.
	MaxHeldRows int
}

// DefaultMaxRows is the advanced hunting API's row cap.
const DefaultMaxRows = 100_000

const defaultMaxHeld = 5_000_000

// LimitError is a query stopped because it needed more memory than allowed.
type LimitError struct{ Held int }

func (e *LimitError) Error() string {
	return fmt.Sprintf("the query needed to hold more than %d rows at once", e.Held)
}

// Result is the outcome of a query.
type Result struct {
	Columns   []Column
	Rows      [][]Value
	Truncated bool  // more rows than MaxRows matched
	Scanned   int64 // rows the tables produced
}

// Program is a compiled query, ready to run any number of times.
type Program struct {
	table  Table
	cols   []Column // the output schema
	stages []stageBuilder
	filter func(now time.Time) Filter
	needed []bool // table columns the query reads; nil: all
	reuse  bool   // the rows handed over are copied before being kept
}

// stageBuilder makes a fresh stage for one run, feeding next.
type stageBuilder func(rt *runtime, next stage) stage

// Columns is the output schema.
func (p *Program) Columns() []Column { return slices.Clone(p.cols) }

// Run parses, compiles and runs a query.
func Run(ctx context.Context, cat *Catalog, query string, opts Options) (*Result, error) {
	q, err := Parse(query)
	if err != nil {
		return nil, err
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	p, err := Compile(cat, q, opts.Now)
	if err != nil {
		return nil, err
	}
	return p.Run(ctx, opts)
}

// Compile resolves and type-checks a parsed query against cat. now is the
// value of now() and ago()'s reference.
func Compile(cat *Catalog, q *Query, now time.Time) (*Program, error) {
	t, ok := cat.Table(q.Table)
	if !ok {
		return nil, &SemanticError{Msg: fmt.Sprintf("Failed to resolve table or column expression named '%s'", q.Table)}
	}
	p := &Program{table: t}
	sc := newScope(t.Columns())
	nowNS := now.UnixNano()
	var leadingWheres []conjunct
	leading := true
	// Which table columns the query reads, and whether the first operator
	// after the leading wheres copies its input (then a table may reuse one
	// row buffer).
	width := len(sc.cols)
	needed := make([]bool, width)
	tracking, reuseKnown := true, false
	for i, op := range q.Ops {
		c := &compiler{op: op.opName(), sc: sc, now: nowNS}
		if _, isWhere := op.(*WhereOp); !isWhere {
			leading = false
		}
		var err error
		var b stageBuilder
		var use opUse
		switch op := op.(type) {
		case *WhereOp:
			var pred cexpr
			pred, err = c.compile(op.Pred)
			if err == nil && pred.typ != Bool && pred.typ != Dynamic && pred.typ != Null {
				err = c.errorf("the predicate must be a bool expression, not %s", pred.typ)
			}
			if err == nil && leading {
				leadingWheres = append(leadingWheres, conjuncts(c, op.Pred)...)
			}
			b, use = whereBuilder(pred), opUse{refs: pred.cols, passes: true}
		case *ProjectOp:
			sc, b, use.refs, err = compileProject(c, op.Items)
			use.ends, use.copies = true, true
		case *ExtendOp:
			sc, b, use.refs, err = compileExtend(c, op.Items)
			use.copies = true
		case *ProjectAwayOp:
			sc, b, use.refs, err = compileProjectAway(c, op.Names)
			use.ends, use.copies = true, true
		case *ProjectRenameOp:
			sc, err = compileRename(c, op.Renames)
			use.passes = true
		case *SummarizeOp:
			sc, b, use, err = compileSummarize(c, op)
		case *SortOp:
			var keys []compiledKey
			keys, err = compileKeys(c, op.Keys)
			b, use.refs = sortBuilder(keys, -1, p.resultCapped(q.Ops[i+1:])), keyRefs(keys)
		case *TopOp:
			var keys []compiledKey
			keys, err = compileKeys(c, []SortKey{op.Key})
			b, use.refs = sortBuilder(keys, op.N, false), keyRefs(keys)
		case *TakeOp:
			b = takeBuilder(op.N)
		case *DistinctOp:
			sc, b, use.refs, err = compileDistinct(c, op)
			use.ends, use.copies = true, true
		case *CountOp:
			sc = newScope([]Column{{"Count", Long}})
			b, use = countBuilder(), opUse{ends: true, copies: true}
		default:
			err = c.errorf("unsupported operator")
		}
		if err != nil {
			return nil, err
		}
		if b != nil {
			p.stages = append(p.stages, b)
		}
		if !reuseKnown && !use.passes {
			p.reuse, reuseKnown = use.copies, true
		}
		if tracking {
			for _, i := range use.refs {
				if i < width {
					needed[i] = true
				}
			}
			tracking = !use.ends
		}
	}
	p.cols = sc.cols
	if !tracking {
		p.needed = needed
	}
	p.filter = pushdown(t, leadingWheres)
	return p, nil
}

// opUse is what an operator reads of its input and does with its rows.
type opUse struct {
	refs   []int // input columns read
	ends   bool  // its output has none of its input's columns by position
	copies bool  // it never keeps an input row (it copies what it needs)
	passes bool  // it hands rows on untouched (where, project-rename)
}

func keyRefs(keys []compiledKey) []int {
	var out []int
	for _, k := range keys {
		out = append(out, k.x.cols...)
	}
	return out
}

// resultCapped reports whether a sort followed by ops can keep only as many
// rows as the result holds: the ops neither drop nor reorder rows, or a
// take follows (whose own bound then applies first).
func (p *Program) resultCapped(ops []Op) bool {
	for _, op := range ops {
		switch op.(type) {
		case *ProjectOp, *ExtendOp, *ProjectAwayOp, *ProjectRenameOp:
		case *TakeOp:
			return true
		default:
			return false
		}
	}
	return true
}

// Run executes the program.
func (p *Program) Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.MaxRows <= 0 {
		opts.MaxRows = DefaultMaxRows
	}
	if opts.MaxHeldRows <= 0 {
		opts.MaxHeldRows = defaultMaxHeld
	}
	rt := &runtime{ctx: ctx, maxHeld: opts.MaxHeldRows, maxRows: opts.MaxRows}
	sink := &collector{max: opts.MaxRows}
	var head stage = sink
	for i := len(p.stages) - 1; i >= 0; i-- {
		head = p.stages[i](rt, head)
	}
	f := p.filter(opts.Now)
	f.Columns, f.Reuse = p.needed, p.reuse
	err := p.table.Scan(ctx, f, func(row []Value) error {
		rt.scanned++
		if rt.scanned&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return head.push(row)
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	if err := head.done(); err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &Result{Columns: slices.Clone(p.cols), Rows: sink.rows, Truncated: sink.truncated, Scanned: rt.scanned}, nil
}

// conjunct is one and-ed term of a leading where clause.
type conjunct struct {
	x   cexpr
	ast Expr
	c   *compiler
}

// conjuncts splits a predicate on its top-level ands and compiles each.
func conjuncts(c *compiler, e Expr) []conjunct {
	if b, ok := e.(*Binary); ok && b.Op == "and" {
		return append(conjuncts(c, b.L), conjuncts(c, b.R)...)
	}
	x, err := c.compile(e)
	if err != nil {
		return nil
	}
	return []conjunct{{x: x, ast: e, c: c}}
}

// pushdown derives the table filter from the conjuncts of the leading
// where clauses: those that read only partition columns, and comparisons
// of Timestamp with a constant.
func pushdown(t Table, conds []conjunct) func(time.Time) Filter {
	cols := t.Columns()
	part := map[int]bool{}
	for _, name := range t.PartitionColumns() {
		for i, c := range cols {
			if c.Name == name {
				part[i] = true
			}
		}
	}
	ts := -1
	for i, c := range cols {
		if c.Name == "Timestamp" && c.Type == DateTime {
			ts = i
		}
	}
	var preds, all []evalFn
	var from, to int64
	haveFrom, haveTo := false, false
	bound := func(lo bool, v Value) {
		if v.Kind != DateTime {
			return
		}
		if lo && (!haveFrom || v.I > from) {
			from, haveFrom = v.I, true
		}
		if !lo && (!haveTo || v.I < to) {
			to, haveTo = v.I, true
		}
	}
	for _, c := range conds {
		all = append(all, c.x.eval)
		if c.x.konst {
			continue
		}
		onlyPart := len(c.x.cols) > 0
		for _, i := range c.x.cols {
			onlyPart = onlyPart && part[i]
		}
		if onlyPart {
			preds = append(preds, c.x.eval)
			continue
		}
		if ts < 0 {
			continue
		}
		switch e := c.ast.(type) {
		case *Binary:
			col, other, flipped := e.L, e.R, false
			if !isColumn(col, "Timestamp") {
				col, other, flipped = e.R, e.L, true
			}
			lit, ok := constOf(c.c, other)
			if !ok || !isColumn(col, "Timestamp") {
				continue
			}
			op := e.Op
			if flipped {
				op = map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "=="}[op]
			}
			switch op {
			case ">", ">=":
				bound(true, lit)
			case "<", "<=":
				bound(false, lit)
			case "==":
				bound(true, lit)
				bound(false, lit)
			}
		case *Between:
			if e.Not || !isColumn(e.X, "Timestamp") {
				continue
			}
			if lo, ok := constOf(c.c, e.Lo); ok {
				bound(true, lo)
				if hi, ok := constOf(c.c, e.Hi); ok {
					if hi.Kind == TimeSpan {
						hi = Value{Kind: DateTime, I: lo.I + hi.I}
					}
					bound(false, hi)
				}
			}
		}
	}
	return func(now time.Time) Filter {
		f := Filter{Now: now}
		if len(preds) > 0 {
			f.Partition = func(row []Value) bool {
				for _, p := range preds {
					if !p(row).truthy() {
						return false
					}
				}
				return true
			}
		}
		if len(all) > 0 {
			f.Row = func(row []Value) bool {
				for _, p := range all {
					if !p(row).truthy() {
						return false
					}
				}
				return true
			}
		}
		if haveFrom {
			f.From = time.Unix(0, from).UTC()
		}
		if haveTo {
			f.To = time.Unix(0, to).UTC()
		}
		return f
	}
}

func isColumn(e Expr, name string) bool {
	id, ok := e.(*Ident)
	return ok && id.Name == name
}

// constOf evaluates an expression that reads no column (ago(7d),
// datetime(...)); ok is false for anything else.
func constOf(c *compiler, e Expr) (Value, bool) {
	x, err := c.compile(e)
	if err != nil || !x.konst {
		return Value{}, false
	}
	return x.val, true
}
