package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(...any) error }

// conditions collects a WHERE clause and its arguments.
type conditions struct {
	conds []string
	args  []any
}

func (c *conditions) add(cond string, args ...any) {
	c.conds, c.args = append(c.conds, cond), append(c.args, args...)
}

func (c *conditions) where() string {
	if len(c.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(c.conds, " AND ")
}

// queryAll runs q and scans every row with scan.
func queryAll[T any](ctx context.Context, tx *sql.Tx, scan func(rowScanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// findPage reads one page of what c selects from table (tail orders and
// limits it) and counts all of it, in one read transaction so that the two
// agree.
func findPage[T any](ctx context.Context, db *DB, table, cols string, c conditions, tail string, scan func(rowScanner) (T, error)) ([]T, int, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table+c.where(), c.args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count %s: %w", table, err)
	}
	out, err := queryAll(ctx, tx, scan, `SELECT `+cols+` FROM `+table+c.where()+tail, c.args...)
	if err != nil {
		return nil, 0, fmt.Errorf("query %s: %w", table, err)
	}
	return out, total, nil
}
