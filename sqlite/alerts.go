package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mdebridge/mdebridge"
)

// alertCols are the columns of an alert row, in the order alertRow fills
// them.
const alertCols = `id, incident_ref, mde_incident_id, severity, status, classification, determination, assigned_to,
	detection_source, category, title, machine_id, computer_dns_name, rbac_group_name, alert_creation_time,
	last_update_time, state, raw, ingested_at, updated_at`

var alertColCount = strings.Count(alertCols, ",") + 1

// alertUpsertSuffix keeps an alert's incident and first ingestion when a
// newer version replaces it.
const alertUpsertSuffix = ` ON CONFLICT (id) DO UPDATE SET mde_incident_id = excluded.mde_incident_id, severity = excluded.severity,
	status = excluded.status, classification = excluded.classification, determination = excluded.determination,
	assigned_to = excluded.assigned_to, detection_source = excluded.detection_source, category = excluded.category,
	title = excluded.title, machine_id = excluded.machine_id, computer_dns_name = excluded.computer_dns_name,
	rbac_group_name = excluded.rbac_group_name, alert_creation_time = excluded.alert_creation_time,
	last_update_time = excluded.last_update_time, state = excluded.state, raw = excluded.raw, updated_at = excluded.updated_at,
	incident_ref = coalesce(alerts.incident_ref, excluded.incident_ref)`

// alertRow is the row of a (the effective alert: MDE's version with the
// changes made in mdebridge that MDE has not taken yet).
func alertRow(a *mdebridge.Alert, incidentRef int64, state mdebridge.AlertState, now string) ([]any, error) {
	st, err := json.Marshal(state)
	if err != nil {
		return nil, err
	}
	var ref any
	if incidentRef != 0 {
		ref = incidentRef
	}
	return []any{a.ID, ref, a.IncidentID, a.Severity, a.Status, a.Classification, a.Determination, a.AssignedTo,
		a.DetectionSource, a.Category, a.Title, a.MachineID, a.ComputerDNSName, a.RBACGroupName, fmtTime(a.AlertCreationTime),
		fmtTime(a.Version()), string(st), string(a.Raw), now, now}, nil
}

// summaryCols are what incident aggregation reads of an alert.
const summaryCols = `id, incident_ref, mde_incident_id, severity, status, classification, determination, assigned_to,
	title, category, machine_id, computer_dns_name, alert_creation_time, last_update_time`

// scanSummary scans summaryCols, and then the extra columns into extra.
func scanSummary(rows rowScanner, extra ...any) (mdebridge.Alert, error) {
	var a mdebridge.Alert
	var ref sql.NullInt64
	var created, updated string
	err := rows.Scan(append([]any{&a.ID, &ref, &a.IncidentID, &a.Severity, &a.Status, &a.Classification, &a.Determination, &a.AssignedTo,
		&a.Title, &a.Category, &a.MachineID, &a.ComputerDNSName, &created, &updated}, extra...)...)
	a.IncidentRef = ref.Int64
	a.AlertCreationTime, a.LastUpdateTime = parseTime(created), parseTime(updated)
	return a, err
}

// decodeStored reads a stored alert: everything from MDE's JSON, best
// effort (it was decoded leniently once already), then the effective
// triage from the typed columns.
func decodeStored(summary mdebridge.Alert, raw string, ingested string) mdebridge.Alert {
	var a mdebridge.Alert
	_ = json.Unmarshal([]byte(raw), &a) // a field MDE sent in an odd form stays empty; Raw keeps it
	a.ID, a.IncidentRef = summary.ID, summary.IncidentRef
	a.Severity, a.Status, a.Classification, a.Determination, a.AssignedTo = summary.Severity, summary.Status, summary.Classification, summary.Determination, summary.AssignedTo
	a.LastUpdateTime = summary.LastUpdateTime
	a.Raw = json.RawMessage(raw)
	a.IngestedAt = parseTime(ingested)
	if a.Evidence == nil {
		a.Evidence = []mdebridge.Evidence{}
	}
	if a.Comments == nil {
		a.Comments = []mdebridge.AlertComment{}
	}
	return a
}

const storedAlertCols = summaryCols + `, raw, ingested_at`

// scanStoredAlert scans storedAlertCols.
func scanStoredAlert(row rowScanner) (mdebridge.Alert, error) {
	var raw, ingested string
	a, err := scanSummary(row, &raw, &ingested)
	if err != nil {
		return a, err
	}
	return decodeStored(a, raw, ingested), nil
}

// queryAlerts reads the alerts tail (a WHERE clause, an order) selects.
func queryAlerts(ctx context.Context, tx *sql.Tx, tail string, args ...any) ([]mdebridge.Alert, error) {
	as, err := queryAll(ctx, tx, scanStoredAlert, `SELECT `+storedAlertCols+` FROM alerts a`+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("query alerts: %w", err)
	}
	return as, nil
}

func alertWhere(f mdebridge.AlertFilter) conditions {
	var c conditions
	for _, eq := range []struct{ col, v string }{{"severity", f.Severity}, {"status", f.Status}, {"detection_source", f.DetectionSource},
		{"category", f.Category}, {"rbac_group_name", f.RBACGroup}} {
		if eq.v != "" {
			c.add(`a.`+eq.col+` = ? COLLATE NOCASE`, eq.v)
		}
	}
	if f.Machine != "" {
		c.add(`(a.machine_id = ? COLLATE NOCASE OR a.computer_dns_name = ? COLLATE NOCASE OR a.computer_dns_name LIKE ? ESCAPE '\')`,
			f.Machine, f.Machine, likeEscape(f.Machine)+".%")
	}
	if f.Incident != 0 {
		c.add(`a.incident_ref = ?`, f.Incident)
	}
	if f.Entity != "" {
		c.add(`EXISTS (SELECT 1 FROM alert_entities e WHERE e.alert_id = a.id AND e.value = ?)`, strings.ToLower(strings.TrimSpace(f.Entity)))
	}
	if !f.UpdatedSince.IsZero() {
		c.add(`a.last_update_time >= ?`, fmtTime(f.UpdatedSince))
	}
	return c
}

// FindAlerts returns the alerts that match f, most recently updated first.
func (db *DB) FindAlerts(ctx context.Context, f mdebridge.AlertFilter) ([]mdebridge.Alert, int, error) {
	return findPage(ctx, db, "alerts a", storedAlertCols, alertWhere(f),
		` ORDER BY a.last_update_time DESC, a.id`+limitOffset(f.Limit, f.Offset), scanStoredAlert)
}

// GetAlert returns one alert by id.
func (db *DB) GetAlert(ctx context.Context, id string) (*mdebridge.Alert, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	as, err := queryAlerts(ctx, tx, ` WHERE a.id = ? COLLATE NOCASE`, strings.TrimSpace(id))
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		return nil, &mdebridge.NotFoundError{Kind: "alert", Key: id}
	}
	return &as[0], nil
}

// writeEntities replaces what the given alerts mention.
func writeEntities(ctx context.Context, b *batcher, alerts []*mdebridge.Alert) error {
	ids := make([]any, len(alerts))
	var rows []any
	for i, a := range alerts {
		ids[i] = a.ID
		for _, e := range a.Entities() {
			rows = append(rows, a.ID, e.Kind, e.Value)
		}
	}
	if err := b.exec(ctx, `DELETE FROM alert_entities WHERE alert_id IN `, ``, 1, ids); err != nil {
		return fmt.Errorf("clear alert entities: %w", err)
	}
	if err := b.exec(ctx, `INSERT OR IGNORE INTO alert_entities (alert_id, kind, value) VALUES `, ``, 3, rows); err != nil {
		return fmt.Errorf("insert alert entities: %w", err)
	}
	return nil
}

var _ mdebridge.AlertStore = (*DB)(nil)
