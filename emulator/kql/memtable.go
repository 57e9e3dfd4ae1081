package kql

import (
	"context"
	"slices"
)

// MemTable is a table over rows held in memory, for small tables and tests.
type MemTable struct {
	name string
	cols []Column
	rows [][]Value
	part []string
}

// NewMemTable returns a table of the given rows, each in the order of cols.
// partition names the partition columns (may be nil).
func NewMemTable(name string, cols []Column, rows [][]Value, partition ...string) *MemTable {
	return &MemTable{name: name, cols: slices.Clone(cols), rows: rows, part: partition}
}

func (t *MemTable) Name() string               { return t.name }
func (t *MemTable) Columns() []Column          { return slices.Clone(t.cols) }
func (t *MemTable) PartitionColumns() []string { return t.part }

// Scan hands over every row. It honours every part of the filter (the
// partition and row predicates, the Timestamp range, unread columns left
// null, a reused buffer), so that tests can check that none of them ever
// changes a result.
func (t *MemTable) Scan(ctx context.Context, f Filter, emit func([]Value) error) error {
	ts := -1
	var part []int
	for i, c := range t.cols {
		if c.Name == "Timestamp" && c.Type == DateTime {
			ts = i
		}
		if slices.Contains(t.part, c.Name) {
			part = append(part, i)
		}
	}
	probe := make([]Value, len(t.cols))
	scratch := make([]Value, len(t.cols))
	for _, r := range t.rows {
		if f.Partition != nil && len(part) > 0 {
			clear(probe)
			for _, i := range part {
				probe[i] = r[i]
			}
			if !f.Partition(probe) {
				continue
			}
		}
		if ts >= 0 && r[ts].Kind == DateTime {
			if !f.From.IsZero() && r[ts].I < f.From.UnixNano() || !f.To.IsZero() && r[ts].I > f.To.UnixNano() {
				continue
			}
		}
		if f.Row != nil && !f.Row(r) {
			continue
		}
		out := scratch
		if !f.Reuse {
			out = make([]Value, len(r))
		}
		for i, v := range r {
			if f.Columns != nil && !f.Columns[i] {
				v = Value{}
			}
			out[i] = v
		}
		if err := emit(out); err != nil {
			return err
		}
	}
	return nil
}
