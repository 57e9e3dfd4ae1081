package kql

// Query is a parsed query: a table and the operators piped after it.
type Query struct {
	Table    string
	TablePos int
	Ops      []Op
}

// Op is one tabular operator of the pipeline.
type Op interface{ opName() string }

// NamedExpr is an expression with an optional output name (Name = Expr).
type NamedExpr struct {
	Name string
	Expr Expr
}

type WhereOp struct{ Pred Expr }
type ProjectOp struct{ Items []NamedExpr }
type ProjectAwayOp struct{ Names []*Ident }
type ProjectRenameOp struct{ Renames []Rename }
type ExtendOp struct{ Items []NamedExpr }
type SummarizeOp struct{ Aggs, By []NamedExpr }
type SortOp struct{ Keys []SortKey }
type TakeOp struct{ N int64 }
type TopOp struct {
	N   int64
	Key SortKey
}
type DistinctOp struct {
	Cols []*Ident // nil with All
	All  bool
}
type CountOp struct{}

// Rename is NewName = OldName of project-rename.
type Rename struct {
	New string
	Old *Ident
}

// SortKey is one key of order by: descending unless Asc; NullsFirst
// defaults to Asc (Kusto puts nulls first ascending, last descending).
type SortKey struct {
	Expr       Expr
	Asc        bool
	NullsFirst bool
}

func (*WhereOp) opName() string         { return "where" }
func (*ProjectOp) opName() string       { return "project" }
func (*ProjectAwayOp) opName() string   { return "project-away" }
func (*ProjectRenameOp) opName() string { return "project-rename" }
func (*ExtendOp) opName() string        { return "extend" }
func (*SummarizeOp) opName() string     { return "summarize" }
func (*SortOp) opName() string          { return "sort" }
func (*TakeOp) opName() string          { return "take" }
func (*TopOp) opName() string           { return "top" }
func (*DistinctOp) opName() string      { return "distinct" }
func (*CountOp) opName() string         { return "count" }

// Expr is a scalar expression.
type Expr interface{ position() int }

// Ident names a column (or, as a call's name, a function).
type Ident struct {
	Name string
	Pos  int
}

// Literal is a constant.
type Literal struct {
	Val Value
	Pos int
}

// Star is the * argument of arg_max(x, *).
type Star struct{ Pos int }

// Call is a function or aggregate call.
type Call struct {
	Name string
	Args []Expr
	Pos  int
}

// Binary is a binary operator: arithmetic, comparison, string operators,
// and, or.
type Binary struct {
	Op   string
	L, R Expr
	Pos  int
}

// Unary is a prefix minus.
type Unary struct {
	Op  string
	X   Expr
	Pos int
}

// ListOp is in, !in, in~, !in~, has_any, has_all with a list of values.
type ListOp struct {
	Op   string
	X    Expr
	List []Expr
	Pos  int
}

// Between is X between (Lo .. Hi) (Not for !between).
type Between struct {
	X, Lo, Hi Expr
	Not       bool
	Pos       int
}

// Index is X[Key] or X.Key on a dynamic value.
type Index struct {
	X   Expr
	Key Expr
	Pos int
}

func (e *Ident) position() int   { return e.Pos }
func (e *Literal) position() int { return e.Pos }
func (e *Star) position() int    { return e.Pos }
func (e *Call) position() int    { return e.Pos }
func (e *Binary) position() int  { return e.Pos }
func (e *Unary) position() int   { return e.Pos }
func (e *ListOp) position() int  { return e.Pos }
func (e *Between) position() int { return e.Pos }
func (e *Index) position() int   { return e.Pos }
