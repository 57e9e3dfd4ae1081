package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/mdebridge/mdebridge"
)

// AppendAudit records audit entries in one transaction.
func (db *DB) AppendAudit(ctx context.Context, entries ...*mdebridge.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO audit_log (at, actor, operation, target_id, target_name, comment,
		request_id, action_id, result, status, error, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, e := range entries {
		if e.At.IsZero() {
			e.At = db.now()
		}
		res, err := stmt.ExecContext(ctx, fmtTime(e.At), e.Actor, e.Operation, e.TargetID, e.TargetName, e.Comment,
			e.RequestID, e.ActionID, e.Result, e.Status, e.Error, string(e.Details))
		if err != nil {
			return fmt.Errorf("append audit entry: %w", err)
		}
		if e.ID, err = res.LastInsertId(); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// FindAudit returns matching audit entries, newest first.
func (db *DB) FindAudit(ctx context.Context, f mdebridge.AuditFilter) ([]mdebridge.AuditEntry, error) {
	var c conditions
	if !f.Since.IsZero() {
		c.add(`at >= ?`, fmtTime(f.Since))
	}
	if f.Actor != "" {
		c.add(`actor = ?`, f.Actor)
	}
	if f.TargetID != "" {
		c.add(`target_id = ? COLLATE NOCASE`, f.TargetID)
	}
	if f.RequestID != "" {
		c.add(`request_id = ?`, f.RequestID)
	}
	if f.Operation != "" {
		c.add(`operation = ?`, f.Operation)
	}
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	out, err := queryAll(ctx, tx, scanAudit, `SELECT id, at, actor, operation, target_id, target_name, comment, request_id,
		action_id, result, status, error, details FROM audit_log`+c.where()+` ORDER BY id DESC`+limitOffset(f.Limit, 0), c.args...)
	if err != nil {
		return nil, fmt.Errorf("query audit log: %w", err)
	}
	return out, nil
}

func scanAudit(row rowScanner) (mdebridge.AuditEntry, error) {
	var e mdebridge.AuditEntry
	var at, details string
	if err := row.Scan(&e.ID, &at, &e.Actor, &e.Operation, &e.TargetID, &e.TargetName, &e.Comment, &e.RequestID,
		&e.ActionID, &e.Result, &e.Status, &e.Error, &details); err != nil {
		return e, err
	}
	e.At = parseTime(at)
	if details != "" {
		e.Details = []byte(details)
	}
	return e, nil
}

// CreateBulkJob records a job and its targets in one transaction.
func (db *DB) CreateBulkJob(ctx context.Context, job *mdebridge.BulkJob) error {
	now := db.now()
	job.CreatedAt, job.UpdatedAt = now, now
	if job.Status == "" {
		job.Status = mdebridge.BulkRunning
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO bulk_jobs (id, operation, request, actor, comment, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, job.ID, job.Operation, string(job.Request), job.Actor, job.Comment, job.Status,
		fmtTime(now), fmtTime(now)); err != nil {
		return fmt.Errorf("create bulk job: %w", err)
	}
	args := make([]any, 0, len(job.Targets)*7)
	for i := range job.Targets {
		t := &job.Targets[i]
		if t.State == "" {
			t.State = mdebridge.TargetPending
		}
		t.UpdatedAt = now
		args = append(args, job.ID, strings.ToLower(t.MachineID), i, t.ComputerName, t.State, t.ActionID, fmtTime(now))
	}
	b := newBatcher(tx)
	defer b.close()
	if err := b.exec(ctx, `INSERT INTO bulk_targets (job_id, machine_id, position, computer_name, state, action_id, updated_at) VALUES `, ``, 7, args); err != nil {
		return fmt.Errorf("create bulk job targets: %w", err)
	}
	return tx.Commit()
}

// UpdateBulkTargets records new states of some targets of a job.
func (db *DB) UpdateBulkTargets(ctx context.Context, jobID string, targets []mdebridge.BulkTarget) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := fmtTime(db.now())
	stmt, err := tx.PrepareContext(ctx, `UPDATE bulk_targets SET state = ?, action_id = ?, error = ?, updated_at = ? WHERE job_id = ? AND machine_id = ?`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, t := range targets {
		res, err := stmt.ExecContext(ctx, t.State, t.ActionID, t.Error, now, jobID, strings.ToLower(t.MachineID))
		if err != nil {
			return fmt.Errorf("update bulk target %s: %w", t.MachineID, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("bulk job %s has no target %s", jobID, t.MachineID)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE bulk_jobs SET updated_at = ? WHERE id = ?`, now, jobID); err != nil {
		return err
	}
	return tx.Commit()
}

// SetBulkJobStatus records a job's status.
func (db *DB) SetBulkJobStatus(ctx context.Context, jobID, status string) error {
	res, err := db.write.ExecContext(ctx, `UPDATE bulk_jobs SET status = ?, updated_at = ? WHERE id = ?`, status, fmtTime(db.now()), jobID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return &mdebridge.NotFoundError{Kind: "bulk job", Key: jobID}
	}
	return nil
}

const bulkJobCols = `id, operation, request, actor, comment, status, created_at, updated_at`

func scanBulkJob(row rowScanner) (mdebridge.BulkJob, error) {
	var j mdebridge.BulkJob
	var req, created, updated string
	if err := row.Scan(&j.ID, &j.Operation, &req, &j.Actor, &j.Comment, &j.Status, &created, &updated); err != nil {
		return j, err
	}
	j.Request, j.CreatedAt, j.UpdatedAt = []byte(req), parseTime(created), parseTime(updated)
	return j, nil
}

// GetBulkJob returns a job with its targets in their original order.
func (db *DB) GetBulkJob(ctx context.Context, jobID string) (*mdebridge.BulkJob, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	j, err := scanBulkJob(tx.QueryRowContext(ctx, `SELECT `+bulkJobCols+` FROM bulk_jobs WHERE id = ?`, jobID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &mdebridge.NotFoundError{Kind: "bulk job", Key: jobID}
	}
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT machine_id, computer_name, state, action_id, error, updated_at FROM bulk_targets WHERE job_id = ? ORDER BY position`, jobID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	j.Counts = map[string]int{}
	for rows.Next() {
		var t mdebridge.BulkTarget
		var updated string
		if err := rows.Scan(&t.MachineID, &t.ComputerName, &t.State, &t.ActionID, &t.Error, &updated); err != nil {
			return nil, err
		}
		t.UpdatedAt = parseTime(updated)
		j.Targets = append(j.Targets, t)
		j.Counts[t.State]++
	}
	return &j, rows.Err()
}

// ListBulkJobs returns the newest jobs, without their targets but with the
// count of targets in each state.
func (db *DB) ListBulkJobs(ctx context.Context, limit int) ([]mdebridge.BulkJob, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	jobs, err := queryAll(ctx, tx, scanBulkJob, `SELECT `+bulkJobCols+` FROM bulk_jobs ORDER BY created_at DESC, id`+limitOffset(limit, 0))
	if err != nil {
		return nil, err
	}
	for i := range jobs {
		jobs[i].Counts = map[string]int{}
		counts, err := tx.QueryContext(ctx, `SELECT state, count(*) FROM bulk_targets WHERE job_id = ? GROUP BY state`, jobs[i].ID)
		if err != nil {
			return nil, err
		}
		for counts.Next() {
			var st string
			var n int
			if err := counts.Scan(&st, &n); err != nil {
				counts.Close()
				return nil, err
			}
			jobs[i].Counts[st] = n
		}
		counts.Close()
	}
	return jobs, nil
}

var (
	_ mdebridge.AuditStore = (*DB)(nil)
	_ mdebridge.BulkStore  = (*DB)(nil)
)
