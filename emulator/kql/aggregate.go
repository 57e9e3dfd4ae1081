package kql

import (
	"slices"
	"strconv"
)

// aggState accumulates one aggregate of one group.
type aggState interface {
	add(row []Value)
	// emit appends the aggregate's output values.
	emit(out []Value) []Value
}

// aggregate is a compiled aggregation: its output columns and a factory
// of per-group states.
type aggregate struct {
	cols  []Column
	fresh func() aggState
	refs  []int // input columns it reads
}

type aggSpec struct {
	min, max int
	// build compiles the call; name is the output name the user gave ("" for
	// the default), exclude the names the by clause already outputs.
	build func(c *compiler, call *Call, name string, exclude map[string]bool) (aggregate, error)
}

// aggFuncs are the aggregation functions of summarize: a lookup table,
// never written after initialisation.
var aggFuncs = map[string]aggSpec{
	"count":     {0, 0, buildCount},
	"countif":   {1, 1, buildCountIf},
	"dcount":    {1, 2, buildDcount},
	"sum":       {1, 1, buildSum},
	"min":       {1, 1, buildMinMax(-1)},
	"max":       {1, 1, buildMinMax(1)},
	"avg":       {1, 1, buildAvg},
	"make_set":  {1, 2, buildMake(true)},
	"make_list": {1, 2, buildMake(false)},
	"take_any":  {1, 1, buildAny},
	"any":       {1, 1, buildAny},
	"arg_max":   {2, -1, buildArg(1)},
	"arg_min":   {2, -1, buildArg(-1)},
}

// aggNames are the names of aggFuncs, for the scalar compiler to refuse
// aggregations outside summarize (aggFuncs itself would make an
// initialisation cycle).
var aggNames = map[string]bool{
	"count": true, "countif": true, "dcount": true, "sum": true, "min": true, "max": true, "avg": true,
	"make_set": true, "make_list": true, "take_any": true, "any": true, "arg_max": true, "arg_min": true,
}

// defaultName is Kusto's name for an unnamed aggregate: prefix_Column when
// the argument is a column, prefix_ otherwise ("count_", "dcount_DeviceId").
func defaultName(name, prefix string, call *Call) string {
	if name != "" {
		return name
	}
	if len(call.Args) > 0 {
		if id, ok := call.Args[0].(*Ident); ok {
			return prefix + "_" + id.Name
		}
	}
	return prefix + "_"
}

func (c *compiler) aggArg(call *Call, i int) (cexpr, error) {
	return c.compile(call.Args[i])
}

func buildCount(c *compiler, call *Call, name string, _ map[string]bool) (aggregate, error) {
	if name == "" {
		name = "count_"
	}
	return aggregate{cols: []Column{{name, Long}}, fresh: func() aggState { return &countState{} }}, nil
}

type countState struct {
	n    int64
	pred evalFn
}

func (s *countState) add(row []Value) {
	if s.pred == nil || s.pred(row).truthy() {
		s.n++
	}
}
func (s *countState) emit(out []Value) []Value { return append(out, LongValue(s.n)) }

func buildCountIf(c *compiler, call *Call, name string, _ map[string]bool) (aggregate, error) {
	p, err := c.aggArg(call, 0)
	if err != nil {
		return aggregate{}, err
	}
	if p.typ != Bool && p.typ != Dynamic && p.typ != Null {
		return aggregate{}, c.errorf("countif() needs a bool argument, not %s", p.typ)
	}
	if name == "" {
		name = "countif_"
	}
	return aggregate{cols: []Column{{name, Long}}, fresh: func() aggState { return &countState{pred: p.eval} }, refs: p.cols}, nil
}

// keyOf identifies a value for distinct counting and sets.
func keyOf(v Value) string {
	return string(appendKey(nil, v))
}

// appendKey appends a type-tagged encoding of v, so that values of
// different types never collide.
func appendKey(b []byte, v Value) []byte {
	b = append(b, byte(v.Kind))
	switch v.Kind {
	case Bool, Int, Long, DateTime, TimeSpan:
		b = strconv.AppendInt(b, v.I, 36)
	case Real:
		b = strconv.AppendFloat(b, v.F, 'g', -1, 64)
	case String:
		b = strconv.AppendInt(b, int64(len(v.S)), 36)
		b = append(b, ':')
		b = append(b, v.S...)
	case Dynamic:
		t := v.Text()
		b = strconv.AppendInt(b, int64(len(t)), 36)
		b = append(b, ':')
		b = append(b, t...)
	}
	return append(b, 0)
}

func buildDcount(c *compiler, call *Call, name string, _ map[string]bool) (aggregate, error) {
	x, err := c.aggArg(call, 0)
	if err != nil {
		return aggregate{}, err
	}
	return aggregate{cols: []Column{{defaultName(name, "dcount", call), Long}}, refs: x.cols,
		fresh: func() aggState { return &dcountState{x: x.eval, seen: map[string]struct{}{}} }}, nil
}

type dcountState struct {
	x    evalFn
	seen map[string]struct{}
}

func (s *dcountState) add(row []Value) {
	if v := s.x(row); v.Kind != Null {
		s.seen[keyOf(v)] = struct{}{}
	}
}
func (s *dcountState) emit(out []Value) []Value { return append(out, LongValue(int64(len(s.seen)))) }

func buildSum(c *compiler, call *Call, name string, _ map[string]bool) (aggregate, error) {
	x, err := c.aggArg(call, 0)
	if err != nil {
		return aggregate{}, err
	}
	t := Long
	switch {
	case x.typ == Real || x.typ == Dynamic:
		t = Real
	case x.typ == TimeSpan:
		t = TimeSpan
	case !x.typ.numeric() && x.typ != Null:
		return aggregate{}, c.errorf("sum() cannot take an argument of type %s", x.typ)
	}
	return aggregate{cols: []Column{{defaultName(name, "sum", call), t}}, refs: x.cols,
		fresh: func() aggState { return &sumState{x: x.eval, t: t} }}, nil
}

type sumState struct {
	x    evalFn
	t    Type
	i    int64
	f    float64
	seen bool
}

func (s *sumState) add(row []Value) {
	v := scalarOf(s.x(row))
	switch v.Kind {
	case Int, Long, TimeSpan:
		s.i += v.I
		s.f += float64(v.I)
	case Real:
		s.f += v.F
	default:
		return
	}
	s.seen = true
}

func (s *sumState) emit(out []Value) []Value {
	switch {
	case !s.seen:
		return append(out, Value{})
	case s.t == Real:
		return append(out, RealValue(s.f))
	}
	return append(out, Value{Kind: s.t, I: s.i})
}

func buildMinMax(sign int) func(*compiler, *Call, string, map[string]bool) (aggregate, error) {
	return func(c *compiler, call *Call, name string, _ map[string]bool) (aggregate, error) {
		x, err := c.aggArg(call, 0)
		if err != nil {
			return aggregate{}, err
		}
		prefix := "max"
		if sign < 0 {
			prefix = "min"
		}
		return aggregate{cols: []Column{{defaultName(name, prefix, call), x.typ}}, refs: x.cols,
			fresh: func() aggState { return &extremeState{x: x.eval, sign: sign} }}, nil
	}
}

type extremeState struct {
	x    evalFn
	sign int
	best Value
}

func (s *extremeState) add(row []Value) {
	v := s.x(row)
	if v.Kind == Null {
		return
	}
	if s.best.Kind == Null {
		s.best = v
		return
	}
	if cmp, ok := orderValues(v, s.best); ok && cmp*s.sign > 0 {
		s.best = v
	}
}
func (s *extremeState) emit(out []Value) []Value { return append(out, s.best) }

func buildAvg(c *compiler, call *Call, name string, _ map[string]bool) (aggregate, error) {
	x, err := c.aggArg(call, 0)
	if err != nil {
		return aggregate{}, err
	}
	if !x.typ.numeric() && x.typ != Dynamic && x.typ != Null {
		return aggregate{}, c.errorf("avg() cannot take an argument of type %s", x.typ)
	}
	return aggregate{cols: []Column{{defaultName(name, "avg", call), Real}}, refs: x.cols,
		fresh: func() aggState { return &avgState{x: x.eval} }}, nil
}

type avgState struct {
	x   evalFn
	sum float64
	n   int64
}

func (s *avgState) add(row []Value) {
	if v := scalarOf(s.x(row)); v.Kind.numeric() {
		s.sum += v.float()
		s.n++
	}
}

func (s *avgState) emit(out []Value) []Value {
	if s.n == 0 {
		return append(out, Value{})
	}
	return append(out, RealValue(s.sum/float64(s.n)))
}

// maxSetSize is the default (and Kusto's) cap of make_set and make_list.
const maxSetSize = 1048576

func buildMake(set bool) func(*compiler, *Call, string, map[string]bool) (aggregate, error) {
	return func(c *compiler, call *Call, name string, _ map[string]bool) (aggregate, error) {
		x, err := c.aggArg(call, 0)
		if err != nil {
			return aggregate{}, err
		}
		limit := int64(maxSetSize)
		if len(call.Args) == 2 {
			l, err := c.aggArg(call, 1)
			if err != nil {
				return aggregate{}, err
			}
			if !l.konst || (l.val.Kind != Long && l.val.Kind != Int) || l.val.I < 1 {
				return aggregate{}, c.errorf("the size limit of '%s' must be a positive whole number", call.Name)
			}
			limit = min(l.val.I, maxSetSize)
		}
		prefix := "list"
		if set {
			prefix = "set"
		}
		return aggregate{cols: []Column{{defaultName(name, prefix, call), Dynamic}}, refs: x.cols,
			fresh: func() aggState {
				s := &makeState{x: x.eval, limit: int(limit), out: []any{}}
				if set {
					s.seen = map[string]struct{}{}
				}
				return s
			}}, nil
	}
}

type makeState struct {
	x     evalFn
	limit int
	seen  map[string]struct{} // nil for make_list
	out   []any
}

func (s *makeState) add(row []Value) {
	if len(s.out) >= s.limit {
		return
	}
	v := s.x(row)
	if v.Kind == Null {
		return
	}
	if s.seen != nil {
		k := keyOf(v)
		if _, dup := s.seen[k]; dup {
			return
		}
		s.seen[k] = struct{}{}
	}
	s.out = append(s.out, toDynamic(v))
}
func (s *makeState) emit(out []Value) []Value { return append(out, DynamicValue(s.out)) }

func buildAny(c *compiler, call *Call, name string, _ map[string]bool) (aggregate, error) {
	x, err := c.aggArg(call, 0)
	if err != nil {
		return aggregate{}, err
	}
	return aggregate{cols: []Column{{defaultName(name, "any", call), x.typ}}, refs: x.cols,
		fresh: func() aggState { return &anyState{x: x.eval} }}, nil
}

type anyState struct {
	x   evalFn
	v   Value
	got bool
}

func (s *anyState) add(row []Value) {
	if !s.got {
		if v := s.x(row); v.Kind != Null {
			s.v, s.got = v, true
		}
	}
}
func (s *anyState) emit(out []Value) []Value { return append(out, s.v) }

// buildArg compiles arg_max(x, cols... | *) and arg_min: the row with the
// largest (smallest) x, its x and the named columns (all for *).
func buildArg(sign int) func(*compiler, *Call, string, map[string]bool) (aggregate, error) {
	return func(c *compiler, call *Call, name string, exclude map[string]bool) (aggregate, error) {
		x, err := c.aggArg(call, 0)
		if err != nil {
			return aggregate{}, err
		}
		xName := name
		if xName == "" {
			if id, ok := call.Args[0].(*Ident); ok {
				xName = id.Name
			} else if sign > 0 {
				xName = "max_"
			} else {
				xName = "min_"
			}
		}
		cols := []Column{{xName, x.typ}}
		var pick []int
		for _, a := range call.Args[1:] {
			switch a := a.(type) {
			case *Star:
				for i, col := range c.sc.cols {
					if col.Name == xName || exclude[col.Name] || containsInt(pick, i) {
						continue
					}
					pick = append(pick, i)
					cols = append(cols, col)
				}
			case *Ident:
				i, ok := c.sc.index[a.Name]
				if !ok {
					return aggregate{}, c.errorf("Failed to resolve scalar expression named '%s'", a.Name)
				}
				if !containsInt(pick, i) {
					pick = append(pick, i)
					cols = append(cols, c.sc.cols[i])
				}
			default:
				return aggregate{}, c.errorf("the arguments of %s after the first must be columns or *", call.Name)
			}
		}
		return aggregate{cols: cols, refs: append(slices.Clone(x.cols), pick...),
			fresh: func() aggState { return &argState{x: x.eval, sign: sign, pick: pick} }}, nil
	}
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// argState keeps the picked values of the best row so far; it copies
// them, so that input rows are never kept.
type argState struct {
	x    evalFn
	sign int
	pick []int
	best Value
	vals []Value // nil until a row was seen
}

func (s *argState) take(row []Value) {
	if s.vals == nil {
		s.vals = make([]Value, len(s.pick))
	}
	for j, i := range s.pick {
		s.vals[j] = row[i]
	}
}

func (s *argState) add(row []Value) {
	v := s.x(row)
	if v.Kind == Null {
		if s.vals == nil {
			s.take(row)
		}
		return
	}
	if s.best.Kind == Null {
		s.best = v
		s.take(row)
		return
	}
	if cmp, ok := orderValues(v, s.best); ok && cmp*s.sign > 0 {
		s.best = v
		s.take(row)
	}
}

func (s *argState) emit(out []Value) []Value {
	out = append(out, s.best)
	if s.vals == nil {
		return append(out, make([]Value, len(s.pick))...)
	}
	return append(out, s.vals...)
}
