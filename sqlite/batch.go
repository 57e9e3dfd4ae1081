package sqlite

import (
	"context"
	"database/sql"
	"strings"
)

// maxVars bounds the parameters of one statement (SQLite allows 32,766).
const maxVars = 4000

// batcher runs multi-row statements in a transaction, keeping one prepared
// statement per distinct SQL text (the full-size chunk and the remainder).
type batcher struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func newBatcher(tx *sql.Tx) *batcher { return &batcher{tx: tx, stmts: map[string]*sql.Stmt{}} }

func (b *batcher) close() {
	for _, s := range b.stmts {
		s.Close()
	}
}

func (b *batcher) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if s, ok := b.stmts[q]; ok {
		return s, nil
	}
	s, err := b.tx.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	b.stmts[q] = s
	return s, nil
}

// chunks calls fn with the SQL of each chunk of rows of cols values and the
// chunk's arguments. An IN list (cols 1 with a prefix ending in "IN ") is
// written as one parenthesised list; anything else as VALUES rows.
func chunks(prefix, suffix string, cols int, args []any, fn func(q string, chunk []any) error) error {
	rowsPer := max(1, maxVars/cols)
	inList := strings.HasSuffix(prefix, "IN ")
	for len(args) > 0 {
		n := min(len(args)/cols, rowsPer)
		var b strings.Builder
		b.WriteString(prefix)
		if inList {
			b.WriteByte('(')
			b.WriteString(strings.Repeat("?,", n-1))
			b.WriteString("?)")
		} else {
			row := "(" + strings.Repeat("?,", cols-1) + "?)"
			for i := range n {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(row)
			}
		}
		b.WriteString(suffix)
		if err := fn(b.String(), args[:n*cols]); err != nil {
			return err
		}
		args = args[n*cols:]
	}
	return nil
}

func (b *batcher) exec(ctx context.Context, prefix, suffix string, cols int, args []any) error {
	return chunks(prefix, suffix, cols, args, func(q string, chunk []any) error {
		s, err := b.stmt(ctx, q)
		if err != nil {
			return err
		}
		_, err = s.ExecContext(ctx, chunk...)
		return err
	})
}

func (b *batcher) query(ctx context.Context, prefix string, cols int, args []any, row func(*sql.Rows) error) error {
	return chunks(prefix, "", cols, args, func(q string, chunk []any) error {
		s, err := b.stmt(ctx, q)
		if err != nil {
			return err
		}
		rows, err := s.QueryContext(ctx, chunk...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := row(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}
