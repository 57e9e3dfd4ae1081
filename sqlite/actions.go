package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mdebridge/mdebridge"
)

// UpsertMachineActions stores actions by id; an older lastUpdate never
// replaces a newer one (a sync page may lag behind what a poll just saw).
func (db *DB) UpsertMachineActions(ctx context.Context, actions []mdebridge.MachineAction) error {
	if len(actions) == 0 {
		return nil
	}
	now := fmtTime(db.now())
	var args []any
	for _, a := range actions {
		if len(a.Raw) == 0 {
			return fmt.Errorf("machine action %s has no raw JSON", a.ID)
		}
		fields, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("machine action %s: %w", a.ID, err)
		}
		args = append(args, strings.ToLower(a.ID), a.Type, a.Scope, a.Status, strings.ToLower(a.MachineID), a.ComputerDNSName,
			a.Requestor, fmtTime(a.CreationTime), fmtTime(a.LastUpdateTime), string(fields), string(a.Raw), now)
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	b := newBatcher(tx)
	defer b.close()
	err = b.exec(ctx, `INSERT INTO machine_actions (id, type, scope, status, machine_id, computer_dns_name, requestor,
		creation_time, last_update_time, fields, raw, synced_at) VALUES `,
		` ON CONFLICT (id) DO UPDATE SET type = excluded.type, scope = excluded.scope, status = excluded.status,
		machine_id = excluded.machine_id, computer_dns_name = excluded.computer_dns_name, requestor = excluded.requestor,
		creation_time = excluded.creation_time, last_update_time = excluded.last_update_time, fields = excluded.fields,
		raw = excluded.raw, synced_at = excluded.synced_at WHERE excluded.last_update_time >= machine_actions.last_update_time`, 12, args)
	if err != nil {
		return fmt.Errorf("upsert machine actions: %w", err)
	}
	return tx.Commit()
}

const actionCols = `id, fields, raw`

func scanAction(rows rowScanner) (mdebridge.MachineAction, error) {
	var id, fields, raw string
	if err := rows.Scan(&id, &fields, &raw); err != nil {
		return mdebridge.MachineAction{}, err
	}
	var a mdebridge.MachineAction
	if err := json.Unmarshal([]byte(fields), &a); err != nil {
		return a, fmt.Errorf("stored machine action %s: %w", id, err)
	}
	a.Raw = []byte(raw)
	return a, nil
}

// FindMachineActions returns matching actions, newest first.
func (db *DB) FindMachineActions(ctx context.Context, f mdebridge.ActionFilter) ([]mdebridge.MachineAction, int, error) {
	var c conditions
	if f.MachineID != "" {
		c.add(`machine_id = ?`, strings.ToLower(f.MachineID))
	}
	if f.Type != "" {
		c.add(`type = ? COLLATE NOCASE`, f.Type)
	}
	if f.Status != "" {
		c.add(`status = ? COLLATE NOCASE`, f.Status)
	}
	if !f.Since.IsZero() {
		c.add(`creation_time >= ?`, fmtTime(f.Since))
	}
	return findPage(ctx, db, "machine_actions", actionCols, c, ` ORDER BY creation_time DESC, id`+limitOffset(f.Limit, f.Offset), scanAction)
}

// GetMachineAction returns one action by id.
func (db *DB) GetMachineAction(ctx context.Context, id string) (*mdebridge.MachineAction, error) {
	row := db.read.QueryRowContext(ctx, `SELECT `+actionCols+` FROM machine_actions WHERE id = ?`, strings.ToLower(strings.TrimSpace(id)))
	a, err := scanAction(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &mdebridge.NotFoundError{Kind: "machine action", Key: id}
	}
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// limitOffset is the LIMIT/OFFSET tail of a query (0 limit: all).
func limitOffset(limit, offset int) string {
	s := ""
	if limit > 0 {
		s = fmt.Sprintf(" LIMIT %d", limit)
	} else if offset > 0 {
		s = " LIMIT -1"
	}
	if offset > 0 {
		s += fmt.Sprintf(" OFFSET %d", offset)
	}
	return s
}

var _ mdebridge.ActionStore = (*DB)(nil)
