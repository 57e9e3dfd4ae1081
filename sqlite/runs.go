package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/mdebridge/mdebridge"
)

// StartRun records a new running run, unless another live run holds the store.
func (db *DB) StartRun(ctx context.Context, run *mdebridge.SyncRun, stale func(mdebridge.SyncRun) bool) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	running, err := queryRuns(ctx, tx, `WHERE status = 'running' ORDER BY id`)
	if err != nil {
		return err
	}
	now := db.now()
	for _, r := range running {
		if !stale(r) {
			return &mdebridge.RunInProgressError{Run: r}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sync_runs SET status = ?, finished_at = ? WHERE id = ?`,
			mdebridge.StatusInterrupted, fmtTime(r.HeartbeatAt), r.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sync_steps SET status = ?, error = 'the process ended before the step finished' WHERE run_id = ? AND status = 'running'`,
			mdebridge.StatusInterrupted, r.ID); err != nil {
			return err
		}
	}
	run.Status, run.StartedAt, run.HeartbeatAt = mdebridge.StatusRunning, now, now
	res, err := tx.ExecContext(ctx, `INSERT INTO sync_runs (trigger, full, status, owner, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)`,
		run.Trigger, boolInt(run.Full), run.Status, run.Owner, fmtTime(now), fmtTime(now))
	if err != nil {
		return err
	}
	if run.ID, err = res.LastInsertId(); err != nil {
		return err
	}
	return tx.Commit()
}

// Heartbeat renews a running run's lease.
func (db *DB) Heartbeat(ctx context.Context, runID int64) error {
	_, err := db.write.ExecContext(ctx, `UPDATE sync_runs SET heartbeat_at = ? WHERE id = ? AND status = 'running'`, fmtTime(db.now()), runID)
	return err
}

// SaveStep records the result of a step.
func (db *DB) SaveStep(ctx context.Context, runID int64, s mdebridge.StepResult) error {
	calls, err := json.Marshal(s.CallsByAPI)
	if err != nil {
		return err
	}
	if s.CallsByAPI == nil {
		calls = []byte("{}")
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO sync_steps (run_id, name, status, items, retired, api_calls, calls_by_api, started_at, duration_ms, error, checkpoint)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (run_id, name) DO UPDATE SET status = excluded.status, items = excluded.items, retired = excluded.retired,
			api_calls = excluded.api_calls, calls_by_api = excluded.calls_by_api, duration_ms = excluded.duration_ms,
			error = excluded.error, checkpoint = excluded.checkpoint`,
		runID, s.Name, s.Status, s.Items, s.Retired, s.APICalls, string(calls), fmtTime(s.StartedAt), s.DurationMS, s.Error, s.Checkpoint); err != nil {
		return fmt.Errorf("save step %s: %w", s.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sync_runs SET heartbeat_at = ? WHERE id = ?`, fmtTime(db.now()), runID); err != nil {
		return err
	}
	return tx.Commit()
}

// FinishRun records a run's final status.
func (db *DB) FinishRun(ctx context.Context, run *mdebridge.SyncRun) error {
	now := db.now()
	run.FinishedAt = &now
	res, err := db.write.ExecContext(ctx, `UPDATE sync_runs SET status = ?, finished_at = ? WHERE id = ?`, run.Status, fmtTime(now), run.ID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("run %d: %w", run.ID, errNoRun)
	}
	return nil
}

// LastRuns returns the newest n runs with their steps.
func (db *DB) LastRuns(ctx context.Context, n int) ([]mdebridge.SyncRun, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	runs, err := queryRuns(ctx, tx, `ORDER BY id DESC LIMIT ?`, n)
	if err != nil {
		return nil, err
	}
	for i := range runs {
		runs[i].Steps, err = querySteps(ctx, tx, `WHERE run_id = ? ORDER BY started_at, name`, runs[i].ID)
		if err != nil {
			return nil, err
		}
	}
	return runs, nil
}

// LastStepResults returns the newest result of each step.
func (db *DB) LastStepResults(ctx context.Context) ([]mdebridge.StepResult, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return querySteps(ctx, tx, `WHERE rowid IN (SELECT s.rowid FROM sync_steps s WHERE s.run_id = (SELECT max(run_id) FROM sync_steps x WHERE x.name = s.name)) ORDER BY name`)
}

// LastCheckpoint returns the newest checkpoint a step saved.
func (db *DB) LastCheckpoint(ctx context.Context, step string) (string, error) {
	var cp string
	err := db.read.QueryRowContext(ctx, `SELECT checkpoint FROM sync_steps WHERE name = ? AND checkpoint != '' ORDER BY run_id DESC LIMIT 1`, step).Scan(&cp)
	if err == sql.ErrNoRows {
		return "", nil
	}
	return cp, err
}

func queryRuns(ctx context.Context, tx *sql.Tx, tail string, args ...any) ([]mdebridge.SyncRun, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, trigger, full, status, owner, started_at, heartbeat_at, finished_at FROM sync_runs `+tail, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []mdebridge.SyncRun
	for rows.Next() {
		var r mdebridge.SyncRun
		var full int
		var started, heartbeat string
		var finished sql.NullString
		if err := rows.Scan(&r.ID, &r.Trigger, &full, &r.Status, &r.Owner, &started, &heartbeat, &finished); err != nil {
			return nil, err
		}
		r.Full, r.StartedAt, r.HeartbeatAt = full == 1, parseTime(started), parseTime(heartbeat)
		if finished.Valid {
			t := parseTime(finished.String)
			r.FinishedAt = &t
		}
		r.Steps = []mdebridge.StepResult{}
		out = append(out, r)
	}
	return out, rows.Err()
}

func querySteps(ctx context.Context, tx *sql.Tx, tail string, args ...any) ([]mdebridge.StepResult, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name, status, items, retired, api_calls, calls_by_api, started_at, duration_ms, error, checkpoint FROM sync_steps `+tail, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []mdebridge.StepResult{}
	for rows.Next() {
		var s mdebridge.StepResult
		var calls, started string
		if err := rows.Scan(&s.Name, &s.Status, &s.Items, &s.Retired, &s.APICalls, &calls, &started, &s.DurationMS, &s.Error, &s.Checkpoint); err != nil {
			return nil, err
		}
		s.StartedAt = parseTime(started)
		if err := json.Unmarshal([]byte(calls), &s.CallsByAPI); err != nil {
			return nil, fmt.Errorf("step %s calls: %w", s.Name, err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Counts reports how many entities the store holds.
func (db *DB) Counts(ctx context.Context) (mdebridge.Counts, error) {
	c := mdebridge.Counts{}
	for name, q := range map[string]string{
		"machines":         `SELECT count(*) FROM machines WHERE retired_at IS NULL`,
		"machines_retired": `SELECT count(*) FROM machines WHERE retired_at IS NOT NULL`,

		"logon_users":         `SELECT count(DISTINCT user_id) FROM machine_logon_users WHERE retired_at IS NULL`,
		"machine_logon_users": `SELECT count(*) FROM machine_logon_users WHERE retired_at IS NULL`,
		"alerts":              `SELECT count(*) FROM alerts`,
		"incidents":           `SELECT count(*) FROM incidents`,
		"incidents_open":      `SELECT count(*) FROM incidents WHERE status != 'Resolved'`,
		"machine_actions":     `SELECT count(*) FROM machine_actions`,
		"indicators":          `SELECT count(*) FROM indicators WHERE retired_at IS NULL`,
		"audit_entries":       `SELECT count(*) FROM audit_log`,
	} {
		var n int
		if err := db.read.QueryRowContext(ctx, q).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", name, err)
		}
		c[name] = n
	}
	return c, exposureCounts(ctx, db.read, c)
}

var (
	_ mdebridge.SyncStore   = (*DB)(nil)
	_ mdebridge.StatusStore = (*DB)(nil)
)
