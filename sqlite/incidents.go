package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
)

// storedVersion is what dedupe and change detection know of a stored alert.
type storedVersion struct {
	version time.Time
	state   mdebridge.AlertState
	ref     int64 // its incident, 0 when none
}

// pendingUpdate is a change made in mdebridge that MDE has not confirmed.
type pendingUpdate struct {
	update mdebridge.AlertUpdate
	author string
	at     time.Time
}

// ingestChange is one alert version that changes an incident.
type ingestChange struct {
	alert   *mdebridge.Alert
	action  string
	changes []mdebridge.FieldChange
}

// IngestAlerts stores one page of polled alerts with what they mean for
// incidents, the events they make and the poller's checkpoint, in one
// transaction. A version is compared with the stored one by lastUpdateTime
// (dedupe) and by AlertState (change detection); changes made in
// mdebridge that MDE has not confirmed yet are applied on top of what MDE
// sent, so a poll never undoes them.
func (db *DB) IngestAlerts(ctx context.Context, alerts []mdebridge.Alert, o mdebridge.IngestOptions) (mdebridge.IngestResult, error) {
	res := mdebridge.IngestResult{Verdicts: make([]mdebridge.Verdict, len(alerts))}
	nowT := db.now().UTC()
	now := fmtTime(nowT)
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return res, err
	}
	defer tx.Rollback()
	b := newBatcher(tx)
	defer b.close()

	stored, err := storedVersions(ctx, b, alerts)
	if err != nil {
		return res, err
	}
	pending, err := pendingUpdates(ctx, tx)
	if err != nil {
		return res, err
	}
	var (
		writes   []*mdebridge.Alert // effective versions to store, last one per id wins
		states   = map[string]mdebridge.AlertState{}
		changes  []ingestChange
		orphans  []*mdebridge.Alert // new to incidents: they need one
		affected = map[int64]bool{}
	)
	for i := range alerts {
		a := alerts[i]
		for _, p := range pending[strings.ToLower(a.ID)] {
			a.ApplyUpdate(p.update, p.author, p.at)
		}
		st := a.State()
		old, known := stored[a.ID]
		v := a.Version()
		var verdict mdebridge.Verdict
		switch {
		case known && v.Equal(old.version):
			res.Verdicts[i] = mdebridge.VerdictDuplicate
			continue
		case known && v.Before(old.version):
			res.Verdicts[i] = mdebridge.VerdictStale
			continue
		case known && old.ref != 0:
			diff := old.state.Diff(st)
			verdict = mdebridge.VerdictSilent
			if len(diff) > 0 {
				verdict = mdebridge.VerdictChanged
				changes = append(changes, ingestChange{alert: &a, action: mdebridge.ActionAlertUpdated, changes: diff})
			}
			a.IncidentRef = old.ref
			affected[old.ref] = true
		case o.Filters.Match(&a):
			verdict = mdebridge.VerdictNew
			orphans = append(orphans, &a)
			changes = append(changes, ingestChange{alert: &a})
		default:
			verdict = mdebridge.VerdictFiltered
		}
		res.Verdicts[i] = verdict
		stored[a.ID] = &storedVersion{version: v, state: st, ref: a.IncidentRef}
		writes = append(writes, &a)
		states[a.ID] = st
	}

	// Incidents for the alerts that need one: found by key, or created.
	created, err := assignIncidents(ctx, tx, b, orphans, o.GroupBy, now)
	if err != nil {
		return res, err
	}
	for _, a := range orphans {
		affected[a.IncidentRef] = true
		stored[a.ID].ref = a.IncidentRef
	}
	for i := range changes {
		if c := &changes[i]; c.action == "" {
			c.action = mdebridge.ActionAlertAdded
			if created[c.alert.IncidentRef] == c.alert.ID {
				c.action = mdebridge.ActionIncidentCreated
			}
			if c.action == mdebridge.ActionAlertAdded {
				c.changes = []mdebridge.FieldChange{{Field: "alerts", From: nil, To: c.alert.ID}}
			}
		}
	}
	if err := writeAlerts(ctx, b, writes, states, stored, now); err != nil {
		return res, err
	}

	// Incidents as they now are; one event per change, in page order.
	events := map[int64]int{}
	for _, c := range changes {
		events[c.alert.IncidentRef]++
	}
	incidents, err := reaggregate(ctx, b, affected, events, now)
	if err != nil {
		return res, err
	}
	seq, err := nextSeq(ctx, tx)
	if err != nil {
		return res, err
	}
	done := map[int64]int64{}
	var rows []any
	for _, c := range changes {
		inc := *incidents[c.alert.IncidentRef]
		done[inc.ID]++
		inc.Version = inc.Version - int64(events[inc.ID]) + done[inc.ID]
		seq++
		row, err := eventRow(mdebridge.EventInput{Seq: seq, Action: c.action, At: nowT, Incident: inc, Alert: c.alert,
			Changes: c.changes, PortalURL: o.PortalURL}, c.alert.ID, now)
		if err != nil {
			return res, err
		}
		rows = append(rows, row...)
	}
	if err := b.exec(ctx, `INSERT INTO incident_events (seq, event_id, incident_id, alert_id, kind, origin, created_at, body) VALUES `, ``, 8, rows); err != nil {
		return res, fmt.Errorf("append events: %w", err)
	}
	if len(changes) > 0 {
		if err := setSeq(ctx, tx, seq); err != nil {
			return res, err
		}
		res.Events, res.LastSeq = len(changes), seq
	}
	if o.Checkpoint != nil {
		if err := saveCheckpoint(ctx, tx, *o.Checkpoint, now); err != nil {
			return res, err
		}
	}
	return res, tx.Commit()
}

func storedVersions(ctx context.Context, b *batcher, alerts []mdebridge.Alert) (map[string]*storedVersion, error) {
	ids := make([]any, 0, len(alerts))
	seen := map[string]bool{}
	for _, a := range alerts {
		if !seen[a.ID] {
			seen[a.ID] = true
			ids = append(ids, a.ID)
		}
	}
	out := make(map[string]*storedVersion, len(ids))
	err := b.query(ctx, `SELECT id, last_update_time, state, incident_ref FROM alerts WHERE id IN `, 1, ids, func(rows *sql.Rows) error {
		var id, v, st string
		var ref sql.NullInt64
		if err := rows.Scan(&id, &v, &st, &ref); err != nil {
			return err
		}
		s := &storedVersion{version: parseTime(v), ref: ref.Int64}
		if err := json.Unmarshal([]byte(st), &s.state); err != nil {
			return fmt.Errorf("alert %s state: %w", id, err)
		}
		out[id] = s
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look up alerts: %w", err)
	}
	return out, nil
}

// pendingUpdates returns, by lower-case alert id, the changes made in
// mdebridge that MDE has not confirmed, oldest first.
func pendingUpdates(ctx context.Context, tx *sql.Tx) (map[string][]pendingUpdate, error) {
	changes, err := queryMirror(ctx, tx, `WHERE state IN ('pending', 'sending') ORDER BY id`)
	if err != nil {
		return nil, err
	}
	out := map[string][]pendingUpdate{}
	for _, m := range changes {
		for _, id := range m.AlertIDs {
			k := strings.ToLower(id)
			out[k] = append(out[k], pendingUpdate{update: m.Update, author: m.Author, at: m.CreatedAt})
		}
	}
	return out, nil
}

// assignIncidents gives each alert an incident by its key, creating the
// incidents that do not exist. It returns, for each incident it created,
// the id of the alert that created it.
func assignIncidents(ctx context.Context, tx *sql.Tx, b *batcher, alerts []*mdebridge.Alert, groupBy, now string) (map[int64]string, error) {
	created := map[int64]string{}
	if len(alerts) == 0 {
		return created, nil
	}
	var keys []any
	first := map[string]string{} // key -> the first alert that needs it
	for _, a := range alerts {
		k := mdebridge.IncidentKey(a, groupBy)
		if _, ok := first[k]; !ok {
			first[k] = a.ID
			keys = append(keys, k)
		}
	}
	ids := map[string]int64{}
	lookup := func() error {
		return b.query(ctx, `SELECT key, id FROM incidents WHERE key IN `, 1, keys, func(rows *sql.Rows) error {
			var k string
			var id int64
			if err := rows.Scan(&k, &id); err != nil {
				return err
			}
			ids[k] = id
			return nil
		})
	}
	if err := lookup(); err != nil {
		return nil, fmt.Errorf("look up incidents: %w", err)
	}
	var missing []any
	for _, k := range keys {
		if _, ok := ids[k.(string)]; !ok {
			missing = append(missing, k, now, now)
		}
	}
	if err := b.exec(ctx, `INSERT INTO incidents (key, created_at, updated_at) VALUES `, ``, 3, missing); err != nil {
		return nil, fmt.Errorf("create incidents: %w", err)
	}
	existing := keySet(ids)
	if err := lookup(); err != nil {
		return nil, fmt.Errorf("look up incidents: %w", err)
	}
	for k, id := range ids {
		if !existing[k] {
			created[id] = first[k]
		}
	}
	for _, a := range alerts {
		a.IncidentRef = ids[mdebridge.IncidentKey(a, groupBy)]
	}
	return created, nil
}

func keySet(m map[string]int64) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// writeAlerts upserts the effective alert versions (in id order, the last
// version of an id winning) with what they mention.
func writeAlerts(ctx context.Context, b *batcher, writes []*mdebridge.Alert, states map[string]mdebridge.AlertState, stored map[string]*storedVersion, now string) error {
	last := map[string]*mdebridge.Alert{}
	for _, a := range writes {
		last[a.ID] = a
	}
	ids := make([]string, 0, len(last))
	for id := range last {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var rows []any
	list := make([]*mdebridge.Alert, 0, len(ids))
	for _, id := range ids {
		a := last[id]
		row, err := alertRow(a, stored[id].ref, states[id], now)
		if err != nil {
			return err
		}
		rows = append(rows, row...)
		list = append(list, a)
	}
	if err := b.exec(ctx, `INSERT INTO alerts (`+alertCols+`) VALUES `, alertUpsertSuffix, alertColCount, rows); err != nil {
		return fmt.Errorf("store alerts: %w", err)
	}
	return writeEntities(ctx, b, list)
}

// reaggregate recomputes the summary of the given incidents from their
// alerts, bumps the version of those with events and returns them.
func reaggregate(ctx context.Context, b *batcher, affected map[int64]bool, events map[int64]int, now string) (map[int64]*mdebridge.Incident, error) {
	ids := make([]any, 0, len(affected))
	for id := range affected {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b any) int { return int(a.(int64) - b.(int64)) })
	incidents, err := loadIncidents(ctx, b, ids)
	if err != nil {
		return nil, err
	}
	members := map[int64][]mdebridge.Alert{}
	err = b.query(ctx, `SELECT `+summaryCols+` FROM alerts WHERE incident_ref IN `, 1, ids, func(rows *sql.Rows) error {
		a, err := scanSummary(rows)
		if err != nil {
			return err
		}
		members[a.IncidentRef] = append(members[a.IncidentRef], a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load incident alerts: %w", err)
	}
	var rows []any
	for _, id := range ids {
		inc := incidents[id.(int64)]
		ms := members[inc.ID]
		slices.SortFunc(ms, func(a, b mdebridge.Alert) int { return a.AlertCreationTime.Compare(b.AlertCreationTime) })
		inc.Aggregate(ms)
		if n := events[inc.ID]; n > 0 {
			inc.Version += int64(n)
			inc.UpdatedAt = parseTime(now)
		}
		rows = append(rows, incidentRow(inc)...)
	}
	if err := b.exec(ctx, `INSERT INTO incidents (`+incidentCols+`) VALUES `, incidentUpsertSuffix, incidentColCount, rows); err != nil {
		return nil, fmt.Errorf("save incidents: %w", err)
	}
	return incidents, nil
}

const incidentCols = `id, key, mde_incident_id, title, severity, status, classification, determination, assigned_to,
	alert_count, machines, categories, first_alert_time, last_update_time, created_at, updated_at, version`

func scanIncident(rows rowScanner) (*mdebridge.Incident, error) {
	var inc mdebridge.Incident
	var count int
	var machines, categories, first, last, created, updated string
	if err := rows.Scan(&inc.ID, &inc.Key, &inc.MDEIncidentID, &inc.Title, &inc.Severity, &inc.Status, &inc.Classification,
		&inc.Determination, &inc.AssignedTo, &count, &machines, &categories, &first, &last, &created, &updated, &inc.Version); err != nil {
		return nil, err
	}
	if err := errors.Join(json.Unmarshal([]byte(machines), &inc.Machines), json.Unmarshal([]byte(categories), &inc.Categories)); err != nil {
		return nil, fmt.Errorf("incident %d: %w", inc.ID, err)
	}
	inc.FirstAlertTime, inc.LastUpdateTime = parseTime(first), parseTime(last)
	inc.CreatedAt, inc.UpdatedAt = parseTime(created), parseTime(updated)
	inc.AlertIDs = make([]string, 0, count)
	return &inc, nil
}

func loadIncidents(ctx context.Context, b *batcher, ids []any) (map[int64]*mdebridge.Incident, error) {
	out := make(map[int64]*mdebridge.Incident, len(ids))
	err := b.query(ctx, `SELECT `+incidentCols+` FROM incidents WHERE id IN `, 1, ids, func(rows *sql.Rows) error {
		inc, err := scanIncident(rows)
		if err != nil {
			return err
		}
		out[inc.ID] = inc
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load incidents: %w", err)
	}
	return out, nil
}

var incidentColCount = strings.Count(incidentCols, ",") + 1

// incidentUpsertSuffix rewrites every column of an incident but its key
// and creation time.
var incidentUpsertSuffix = func() string {
	var sets []string
	for _, c := range strings.Split(incidentCols, ",") {
		if c = strings.TrimSpace(c); c != "id" && c != "key" && c != "created_at" {
			sets = append(sets, c+" = excluded."+c)
		}
	}
	return " ON CONFLICT (id) DO UPDATE SET " + strings.Join(sets, ", ")
}()

func incidentRow(inc *mdebridge.Incident) []any {
	machines, _ := json.Marshal(nonNil(inc.Machines))
	categories, _ := json.Marshal(nonNil(inc.Categories))
	return []any{inc.ID, inc.Key, inc.MDEIncidentID, inc.Title, inc.Severity, inc.Status, inc.Classification, inc.Determination,
		inc.AssignedTo, len(inc.AlertIDs), string(machines), string(categories), fmtTime(inc.FirstAlertTime), fmtTime(inc.LastUpdateTime),
		fmtTime(inc.CreatedAt), fmtTime(inc.UpdatedAt), inc.Version}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// eventRow renders an event and returns its incident_events row. The
// alert's raw JSON is spliced in as it is (compacted if need be) rather than
// re-encoded: it is most of an event's bytes.
func eventRow(in mdebridge.EventInput, alertID, now string) ([]any, error) {
	ev := mdebridge.NewIncidentEvent(in)
	raw := ev.Mdebridge.Alert
	ev.Mdebridge.Alert = nil
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("render event: %w", err)
	}
	if len(raw) > 0 {
		if bytes.ContainsAny(raw, "\n\r\t") {
			var c bytes.Buffer
			if err := json.Compact(&c, raw); err != nil {
				return nil, fmt.Errorf("render event: alert %s: %w", alertID, err)
			}
			raw = c.Bytes()
		}
		// The body ends with the "mdebridge" object, whose last member
		// "alert" was left out: put it back before the two closing braces.
		body = append(append(append(body[:len(body)-2:len(body)-2], `,"alert":`...), raw...), "}}"...)
	}
	return []any{in.Seq, ev.Event.ID, in.Incident.ID, alertID, ev.Mdebridge.Event.Kind, ev.Mdebridge.Event.Origin, now, string(body)}, nil
}

// nextSeq returns the last event sequence number handed out.
func nextSeq(ctx context.Context, tx *sql.Tx) (int64, error) {
	var n int64
	err := tx.QueryRowContext(ctx, `SELECT value FROM incident_counters WHERE name = 'event_seq'`).Scan(&n)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return n, err
}

func setSeq(ctx context.Context, tx *sql.Tx, n int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO incident_counters (name, value) VALUES ('event_seq', ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, n)
	return err
}

func saveCheckpoint(ctx context.Context, tx *sql.Tx, cp mdebridge.PollCheckpoint, now string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO incident_poll_state (id, watermark, ties, sweep_from, updated_at) VALUES (1, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET watermark = excluded.watermark, ties = excluded.ties, sweep_from = excluded.sweep_from,
		updated_at = excluded.updated_at`, fmtTime(cp.Watermark), cp.Ties, fmtTime(cp.SweepFrom), now)
	if err != nil {
		return fmt.Errorf("save poll checkpoint: %w", err)
	}
	return nil
}

// PollCheckpoint returns the poller's saved checkpoint.
func (db *DB) PollCheckpoint(ctx context.Context) (mdebridge.PollCheckpoint, bool, error) {
	var cp mdebridge.PollCheckpoint
	var w, s string
	err := db.read.QueryRowContext(ctx, `SELECT watermark, ties, sweep_from FROM incident_poll_state WHERE id = 1`).Scan(&w, &cp.Ties, &s)
	if err == sql.ErrNoRows {
		return cp, false, nil
	}
	if err != nil {
		return cp, false, err
	}
	cp.Watermark, cp.SweepFrom = parseTime(w), parseTime(s)
	return cp, true, nil
}

func incidentWhere(f mdebridge.IncidentFilter) conditions {
	var c conditions
	for _, eq := range []struct{ col, v string }{{"status", f.Status}, {"severity", f.Severity}, {"assigned_to", f.AssignedTo}} {
		if eq.v != "" {
			c.add(`i.`+eq.col+` = ? COLLATE NOCASE`, eq.v)
		}
	}
	if !f.UpdatedSince.IsZero() {
		c.add(`i.updated_at >= ?`, fmtTime(f.UpdatedSince))
	}
	return c
}

// FindIncidents returns the incidents that match f, most recently changed
// first, each with its alert ids.
func (db *DB) FindIncidents(ctx context.Context, f mdebridge.IncidentFilter) ([]mdebridge.Incident, int, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	c := incidentWhere(f)
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM incidents i`+c.where(), c.args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count incidents: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+prefixCols("i.", incidentCols)+` FROM incidents i`+c.where()+
		` ORDER BY i.updated_at DESC, i.id DESC`+limitOffset(f.Limit, f.Offset), c.args...)
	if err != nil {
		return nil, 0, fmt.Errorf("query incidents: %w", err)
	}
	defer rows.Close()
	var out []mdebridge.Incident
	index := map[int64]int{}
	for rows.Next() {
		inc, err := scanIncident(rows)
		if err != nil {
			return nil, 0, err
		}
		index[inc.ID] = len(out)
		out = append(out, *inc)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	if len(out) == 0 {
		return []mdebridge.Incident{}, total, nil
	}
	b := newBatcher(tx)
	defer b.close()
	ids := make([]any, 0, len(out))
	for _, inc := range out {
		ids = append(ids, inc.ID)
	}
	err = b.query(ctx, `SELECT incident_ref, id FROM alerts WHERE incident_ref IN `, 1, ids, func(rows *sql.Rows) error {
		var ref int64
		var id string
		if err := rows.Scan(&ref, &id); err != nil {
			return err
		}
		out[index[ref]].AlertIDs = append(out[index[ref]].AlertIDs, id)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("incident alerts: %w", err)
	}
	for i := range out {
		slices.Sort(out[i].AlertIDs)
	}
	return out, total, nil
}

func prefixCols(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// GetIncident returns one incident with its alerts' comments and the
// state of its changes on their way to MDE.
func (db *DB) GetIncident(ctx context.Context, id int64) (*mdebridge.Incident, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return getIncident(ctx, tx, id)
}

func getIncident(ctx context.Context, tx *sql.Tx, id int64) (*mdebridge.Incident, error) {
	inc, err := scanIncident(tx.QueryRowContext(ctx, `SELECT `+incidentCols+` FROM incidents WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return nil, &mdebridge.NotFoundError{Kind: "incident", Key: strconv.FormatInt(id, 10)}
	}
	if err != nil {
		return nil, err
	}
	alerts, err := queryAlerts(ctx, tx, ` WHERE a.incident_ref = ? ORDER BY a.alert_creation_time, a.id`, id)
	if err != nil {
		return nil, err
	}
	mirror, err := queryMirror(ctx, tx, `WHERE incident_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, err
	}
	inc.Comments = []mdebridge.AlertComment{}
	for _, a := range alerts {
		inc.AlertIDs = append(inc.AlertIDs, a.ID)
		for _, m := range mirror {
			if (m.State == "pending" || m.State == "sending") && slices.ContainsFunc(m.AlertIDs, func(id string) bool { return strings.EqualFold(id, a.ID) }) {
				a.ApplyUpdate(m.Update, m.Author, m.CreatedAt)
			}
		}
		for _, c := range a.Comments {
			if !slices.ContainsFunc(inc.Comments, func(x mdebridge.AlertComment) bool {
				return x.Comment == c.Comment && x.CreatedTime.Equal(c.CreatedTime)
			}) {
				inc.Comments = append(inc.Comments, c)
			}
		}
	}
	slices.SortStableFunc(inc.Comments, func(a, b mdebridge.AlertComment) int { return a.CreatedTime.Compare(b.CreatedTime) })
	for _, m := range mirror {
		if inc.Mirror == nil {
			inc.Mirror = &mdebridge.MirrorStatus{}
		}
		switch m.State {
		case "pending", "sending":
			inc.Mirror.Pending++
			if m.Error != "" {
				inc.Mirror.LastError = m.Error
			}
		case "failed":
			inc.Mirror.Failed++
			inc.Mirror.LastError = m.Error
		}
	}
	if inc.Mirror != nil && inc.Mirror.Pending == 0 && inc.Mirror.Failed == 0 {
		inc.Mirror = nil
	}
	return inc, nil
}

// ChangeIncident applies a change made in mdebridge to an incident.
func (db *DB) ChangeIncident(ctx context.Context, id int64, ch mdebridge.IncidentChange, o mdebridge.IngestOptions) (mdebridge.ChangeResult, error) {
	var res mdebridge.ChangeResult
	nowT := db.now().UTC()
	now := fmtTime(nowT)
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return res, err
	}
	defer tx.Rollback()
	before, err := getIncident(ctx, tx, id)
	if err != nil {
		return res, err
	}
	alerts, err := queryAlerts(ctx, tx, ` WHERE a.incident_ref = ? ORDER BY a.alert_creation_time, a.id`, id)
	if err != nil {
		return res, err
	}
	targets := alerts
	if len(ch.AlertIDs) > 0 {
		targets = nil
		for _, want := range ch.AlertIDs {
			i := slices.IndexFunc(alerts, func(a mdebridge.Alert) bool { return strings.EqualFold(a.ID, want) })
			if i < 0 {
				return res, fmt.Errorf("alert %s is not an alert of incident %d: %w", want, id, mdebridge.ErrInvalidUpdate)
			}
			targets = append(targets, alerts[i])
		}
	}
	states := map[string]mdebridge.AlertState{}
	err = db.readStates(ctx, tx, targets, states)
	if err != nil {
		return res, err
	}
	var changed []*mdebridge.Alert
	var ids []string
	for i := range targets {
		a := &targets[i]
		if err := ch.Validate(a.Classification); err != nil {
			return res, fmt.Errorf("alert %s: %w", a.ID, err)
		}
		next := states[a.ID].Apply(ch.AlertUpdate)
		a.ApplyUpdate(ch.AlertUpdate, ch.Author, nowT)
		if len(states[a.ID].Diff(next)) == 0 {
			continue // nothing to change on this one
		}
		states[a.ID] = next
		changed = append(changed, a)
		ids = append(ids, a.ID)
	}
	res.Incident = before
	if len(changed) == 0 {
		return res, tx.Commit()
	}
	for _, a := range changed {
		st, _ := json.Marshal(states[a.ID])
		if _, err := tx.ExecContext(ctx, `UPDATE alerts SET status = ?, assigned_to = ?, classification = ?, determination = ?, state = ?,
			updated_at = ? WHERE id = ?`, a.Status, a.AssignedTo, a.Classification, a.Determination, string(st), now, a.ID); err != nil {
			return res, fmt.Errorf("change alert %s: %w", a.ID, err)
		}
	}
	upd, _ := json.Marshal(ch.AlertUpdate)
	alertIDs, _ := json.Marshal(ids)
	due := nowT.Add(mdebridge.MirrorGrace)
	r, err := tx.ExecContext(ctx, `INSERT INTO incident_mirror (incident_id, alert_ids, update_json, author, state, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)`, id, string(alertIDs), string(upd), ch.Author, fmtTime(due), now, now)
	if err != nil {
		return res, fmt.Errorf("queue the change for MDE: %w", err)
	}
	mirrorID, _ := r.LastInsertId()
	res.Mirror = mdebridge.MirrorChange{ID: mirrorID, IncidentID: id, AlertIDs: ids, Update: ch.AlertUpdate, Author: ch.Author,
		State: "pending", NextAttemptAt: due, CreatedAt: nowT}

	b := newBatcher(tx)
	defer b.close()
	incidents, err := reaggregate(ctx, b, map[int64]bool{id: true}, map[int64]int{id: 1}, now)
	if err != nil {
		return res, err
	}
	after := incidents[id]
	seq, err := nextSeq(ctx, tx)
	if err != nil {
		return res, err
	}
	seq++
	in := mdebridge.EventInput{Seq: seq, Action: mdebridge.ActionIncidentUpdated, At: nowT, Incident: *after, Alert: changed[0],
		Changes: incidentChanges(before, after, ch.Comment), PortalURL: o.PortalURL, Discriminator: "mirror:" + strconv.FormatInt(mirrorID, 10)}
	row, err := eventRow(in, changed[0].ID, now)
	if err != nil {
		return res, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO incident_events (seq, event_id, incident_id, alert_id, kind, origin, created_at, body)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, row...); err != nil {
		return res, fmt.Errorf("append event: %w", err)
	}
	if err := setSeq(ctx, tx, seq); err != nil {
		return res, err
	}
	res.Event = mdebridge.StoredEvent{Seq: seq, ID: row[1].(string), IncidentID: id, AlertID: changed[0].ID, Kind: row[4].(string),
		Origin: row[5].(string), CreatedAt: nowT, Body: json.RawMessage(row[7].(string))}
	if err := tx.Commit(); err != nil {
		return res, err
	}
	res.Incident, err = db.GetIncident(ctx, id)
	return res, err
}

func (db *DB) readStates(ctx context.Context, tx *sql.Tx, alerts []mdebridge.Alert, into map[string]mdebridge.AlertState) error {
	for _, a := range alerts {
		var st string
		if err := tx.QueryRowContext(ctx, `SELECT state FROM alerts WHERE id = ?`, a.ID).Scan(&st); err != nil {
			return err
		}
		var s mdebridge.AlertState
		if err := json.Unmarshal([]byte(st), &s); err != nil {
			return fmt.Errorf("alert %s state: %w", a.ID, err)
		}
		into[a.ID] = s
	}
	return nil
}

// incidentChanges lists what a change made in mdebridge changed of an
// incident.
func incidentChanges(before, after *mdebridge.Incident, comment string) []mdebridge.FieldChange {
	var out []mdebridge.FieldChange
	for _, f := range []struct{ name, from, to string }{
		{"status", before.Status, after.Status}, {"classification", before.Classification, after.Classification},
		{"determination", before.Determination, after.Determination}, {"assignedTo", before.AssignedTo, after.AssignedTo},
	} {
		if f.from != f.to {
			out = append(out, mdebridge.FieldChange{Field: f.name, From: nullString(f.from), To: nullString(f.to)})
		}
	}
	if comment != "" {
		out = append(out, mdebridge.FieldChange{Field: "comments", From: len(before.Comments), To: []string{comment}})
	}
	return out
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// FindEvents returns events in sequence order.
func (db *DB) FindEvents(ctx context.Context, f mdebridge.EventFilter) ([]mdebridge.StoredEvent, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	q := `SELECT seq, event_id, incident_id, alert_id, kind, origin, created_at, body FROM incident_events WHERE seq > ?`
	args := []any{f.After}
	if f.Incident != 0 {
		q += ` AND incident_id = ?`
		args = append(args, f.Incident)
	}
	rows, err := db.read.QueryContext(ctx, q+` ORDER BY seq LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	out := []mdebridge.StoredEvent{}
	for rows.Next() {
		var e mdebridge.StoredEvent
		var created, body string
		if err := rows.Scan(&e.Seq, &e.ID, &e.IncidentID, &e.AlertID, &e.Kind, &e.Origin, &created, &body); err != nil {
			return nil, err
		}
		e.CreatedAt, e.Body = parseTime(created), json.RawMessage(body)
		out = append(out, e)
	}
	return out, rows.Err()
}

// LastEventSeq is the newest event's sequence number.
func (db *DB) LastEventSeq(ctx context.Context) (int64, error) {
	var n int64
	err := db.read.QueryRowContext(ctx, `SELECT value FROM incident_counters WHERE name = 'event_seq'`).Scan(&n)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return n, err
}

// SinkCursor returns the last event a sink has handled.
func (db *DB) SinkCursor(ctx context.Context, sink string) (int64, error) {
	var n int64
	err := db.read.QueryRowContext(ctx, `SELECT seq FROM incident_sink_cursors WHERE sink = ?`, sink).Scan(&n)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return n, err
}

// SetSinkCursor records the last event a sink has handled. A cursor never
// goes back.
func (db *DB) SetSinkCursor(ctx context.Context, sink string, seq int64) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO incident_sink_cursors (sink, seq, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (sink) DO UPDATE SET seq = max(seq, excluded.seq), updated_at = excluded.updated_at`, sink, seq, fmtTime(db.now()))
	return err
}

// PruneEvents deletes old events every sink has handled.
func (db *DB) PruneEvents(ctx context.Context, olderThan time.Time, delivered int64) (int, error) {
	r, err := db.write.ExecContext(ctx, `DELETE FROM incident_events WHERE created_at < ? AND seq <= ?`, fmtTime(olderThan), delivered)
	if err != nil {
		return 0, err
	}
	n, _ := r.RowsAffected()
	return int(n), nil
}

const mirrorCols = `id, incident_id, alert_ids, update_json, author, state, attempts, next_attempt_at, error, created_at`

func queryMirror(ctx context.Context, tx *sql.Tx, tail string, args ...any) ([]mdebridge.MirrorChange, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+mirrorCols+` FROM incident_mirror `+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("query mirror changes: %w", err)
	}
	defer rows.Close()
	var out []mdebridge.MirrorChange
	for rows.Next() {
		var m mdebridge.MirrorChange
		var ids, upd, next, created string
		if err := rows.Scan(&m.ID, &m.IncidentID, &ids, &upd, &m.Author, &m.State, &m.Attempts, &next, &m.Error, &created); err != nil {
			return nil, err
		}
		if err := errors.Join(json.Unmarshal([]byte(ids), &m.AlertIDs), json.Unmarshal([]byte(upd), &m.Update)); err != nil {
			return nil, fmt.Errorf("mirror change %d: %w", m.ID, err)
		}
		m.NextAttemptAt, m.CreatedAt = parseTime(next), parseTime(created)
		out = append(out, m)
	}
	return out, rows.Err()
}

// ClaimMirrorChanges claims changes due for sending: pending ones whose
// time has come, and ones whose sender's claim ran out (it died).
func (db *DB) ClaimMirrorChanges(ctx context.Context, id int64, now time.Time, limit int, leaseFor time.Duration) ([]mdebridge.MirrorChange, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	due := `WHERE state IN ('pending', 'sending') AND next_attempt_at <= ?`
	args := []any{fmtTime(now)}
	if id != 0 {
		due = `WHERE state = 'pending' AND id = ?`
		args = []any{id}
	}
	changes, err := queryMirror(ctx, tx, due+` ORDER BY id LIMIT ?`, append(args, max(limit, 1))...)
	if err != nil {
		return nil, err
	}
	until := fmtTime(now.Add(leaseFor))
	for i := range changes {
		if _, err := tx.ExecContext(ctx, `UPDATE incident_mirror SET state = 'sending', attempts = attempts + 1, next_attempt_at = ?,
			updated_at = ? WHERE id = ?`, until, fmtTime(now), changes[i].ID); err != nil {
			return nil, err
		}
		changes[i].State = "sending"
		changes[i].Attempts++
	}
	return changes, tx.Commit()
}

// CompleteMirrorChange records how sending a change ended.
func (db *DB) CompleteMirrorChange(ctx context.Context, id int64, o mdebridge.MirrorOutcome) error {
	state, next := "failed", fmtTime(db.now())
	switch {
	case o.Done:
		state = "done"
	case !o.RetryAt.IsZero():
		state, next = "pending", fmtTime(o.RetryAt)
	}
	_, err := db.write.ExecContext(ctx, `UPDATE incident_mirror SET state = ?, next_attempt_at = ?, error = ?, updated_at = ? WHERE id = ?`,
		state, next, o.Error, fmtTime(db.now()), id)
	return err
}

// AcquireLease takes a lease unless a live owner holds it.
func (db *DB) AcquireLease(ctx context.Context, name, owner string, stale func(mdebridge.Lease) bool) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var l mdebridge.Lease
	var hb string
	err = tx.QueryRowContext(ctx, `SELECT name, owner, heartbeat_at FROM leases WHERE name = ?`, name).Scan(&l.Name, &l.Owner, &hb)
	switch {
	case err == sql.ErrNoRows:
	case err != nil:
		return err
	default:
		l.HeartbeatAt = parseTime(hb)
		if l.Owner != owner && !stale(l) {
			return &mdebridge.LeaseHeldError{Lease: l}
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO leases (name, owner, heartbeat_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, heartbeat_at = excluded.heartbeat_at`, name, owner, fmtTime(db.now())); err != nil {
		return err
	}
	return tx.Commit()
}

// errLeaseLost says that another process took a lease over.
var errLeaseLost = errors.New("the lease was taken over by another process")

// RenewLease renews a lease its owner holds.
func (db *DB) RenewLease(ctx context.Context, name, owner string) error {
	r, err := db.write.ExecContext(ctx, `UPDATE leases SET heartbeat_at = ? WHERE name = ? AND owner = ?`, fmtTime(db.now()), name, owner)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("%s: %w", name, errLeaseLost)
	}
	return nil
}

// ReleaseLease gives a lease up.
func (db *DB) ReleaseLease(ctx context.Context, name, owner string) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND owner = ?`, name, owner)
	return err
}

var _ mdebridge.IncidentStore = (*DB)(nil)
