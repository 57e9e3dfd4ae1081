package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
)

// UpsertIndicators stores indicators. A sync (runID > 0) stamps them with
// its run; a push (runID 0) keeps the stamp they had and marks them written
// now, which RetireIndicatorsNotSeen respects.
func (db *DB) UpsertIndicators(ctx context.Context, runID int64, indicators []mdebridge.Indicator) error {
	if len(indicators) == 0 {
		return nil
	}
	now := fmtTime(db.now())
	var args []any
	for _, in := range indicators {
		if in.ID == "" || len(in.Raw) == 0 {
			return fmt.Errorf("indicator %q has no id or no raw JSON", in.IndicatorValue)
		}
		fields, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("indicator %s: %w", in.ID, err)
		}
		args = append(args, in.ID, in.IndicatorType, in.IndicatorValue, in.Action, in.Severity, in.Title,
			fmtTime(in.ExpirationTime), in.CreatedBy, fmtTime(in.CreationTime), fmtTime(in.LastUpdateTime),
			string(fields), string(in.Raw), runID, now)
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	b := newBatcher(tx)
	defer b.close()
	err = b.exec(ctx, `INSERT INTO indicators (id, indicator_type, indicator_value, action, severity, title, expiration_time,
		created_by, creation_time, last_update_time, fields, raw, seen_run, synced_at) VALUES `,
		` ON CONFLICT (id) DO UPDATE SET indicator_type = excluded.indicator_type, indicator_value = excluded.indicator_value,
		action = excluded.action, severity = excluded.severity, title = excluded.title, expiration_time = excluded.expiration_time,
		created_by = excluded.created_by, creation_time = excluded.creation_time, last_update_time = excluded.last_update_time,
		fields = excluded.fields, raw = excluded.raw, seen_run = max(indicators.seen_run, excluded.seen_run),
		synced_at = excluded.synced_at, retired_at = NULL`, 14, args)
	if err != nil {
		return fmt.Errorf("upsert indicators: %w", err)
	}
	return tx.Commit()
}

// RetireIndicatorsNotSeen retires the live indicators run runID did not see,
// except those written after the run started.
func (db *DB) RetireIndicatorsNotSeen(ctx context.Context, runID int64, runStart time.Time) (int, error) {
	res, err := db.write.ExecContext(ctx, `UPDATE indicators SET retired_at = ?
		WHERE retired_at IS NULL AND seen_run < ? AND synced_at < ?`, fmtTime(db.now()), runID, fmtTime(runStart))
	if err != nil {
		return 0, fmt.Errorf("retire indicators: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// RetireIndicators retires the given ids at once.
func (db *DB) RetireIndicators(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	b := newBatcher(tx)
	defer b.close()
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	if err := b.exec(ctx, `UPDATE indicators SET retired_at = '`+fmtTime(db.now())+`' WHERE retired_at IS NULL AND id IN `, ``, 1, args); err != nil {
		return fmt.Errorf("retire indicators: %w", err)
	}
	return tx.Commit()
}

func scanIndicator(rows rowScanner) (mdebridge.Indicator, error) {
	var id, fields, raw, synced string
	var retired sql.NullString
	if err := rows.Scan(&id, &fields, &raw, &synced, &retired); err != nil {
		return mdebridge.Indicator{}, err
	}
	var in mdebridge.Indicator
	if err := json.Unmarshal([]byte(fields), &in); err != nil {
		return in, fmt.Errorf("stored indicator %s: %w", id, err)
	}
	in.Raw, in.SyncedAt = []byte(raw), parseTime(synced)
	if retired.Valid {
		t := parseTime(retired.String)
		in.RetiredAt = &t
	}
	return in, nil
}

const indicatorCols = `id, fields, raw, synced_at, retired_at`

// FindIndicators returns matching indicators, newest first, and the total.
func (db *DB) FindIndicators(ctx context.Context, f mdebridge.IndicatorFilter) ([]mdebridge.Indicator, int, error) {
	var c conditions
	if !f.IncludeRetired {
		c.add(`retired_at IS NULL`)
	}
	if f.Type != "" {
		c.add(`indicator_type = ? COLLATE NOCASE`, f.Type)
	}
	if f.Action != "" {
		c.add(`action = ? COLLATE NOCASE`, f.Action)
	}
	if f.Severity != "" {
		c.add(`severity = ? COLLATE NOCASE`, f.Severity)
	}
	if f.Value != "" {
		c.add(`indicator_value LIKE ? ESCAPE '\'`, "%"+likeEscape(f.Value)+"%")
	}
	return findPage(ctx, db, "indicators", indicatorCols, c, ` ORDER BY creation_time DESC, id`+limitOffset(f.Limit, f.Offset), scanIndicator)
}

// FindIndicator looks one live indicator up by id or by value.
func (db *DB) FindIndicator(ctx context.Context, key string) (*mdebridge.Indicator, error) {
	key = strings.TrimSpace(key)
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	for _, cond := range []string{`id = ?`, `indicator_value = ? COLLATE NOCASE`} {
		ins, err := queryAll(ctx, tx, scanIndicator, `SELECT `+indicatorCols+` FROM indicators WHERE retired_at IS NULL AND `+cond+` ORDER BY id LIMIT 20`, key)
		if err != nil {
			return nil, err
		}
		switch len(ins) {
		case 0:
			continue
		case 1:
			return &ins[0], nil
		}
		cands := make([]string, len(ins))
		for i, in := range ins {
			cands[i] = fmt.Sprintf("%s (%s, id %s)", in.IndicatorValue, in.IndicatorType, in.ID)
		}
		return nil, &mdebridge.AmbiguousError{Key: key, Candidates: cands}
	}
	return nil, &mdebridge.NotFoundError{Kind: "indicator", Key: key}
}

var _ mdebridge.IndicatorStore = (*DB)(nil)
