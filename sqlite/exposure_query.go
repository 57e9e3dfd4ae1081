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

// The read side of the exposure store.

// severityRankSQL ranks a CVE's severity (the exports' word first, the
// catalogue's otherwise): 4 Critical … 1 Low, 0 unknown.
const severityRankSQL = `(CASE lower(CASE WHEN c.export_severity != '' THEN c.export_severity ELSE c.severity END)
	WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END)`

const exploitSQL = `(c.public_exploit = 1 OR c.exploitability_level IN ('ExploitIsPublic', 'ExploitIsVerified', 'ExploitIsInKit'))`

// vulnRowQuery selects vulnerability rows with their dimensions, as
// scanVulnRow reads them.
const vulnRowQuery = `SELECT d.device_id, d.device_name, d.rbac_group_name, d.rbac_group_id, d.os_platform, d.os_version, d.os_architecture,
	s.vendor, s.name, s.version, coalesce(c.id, ''), coalesce(CASE WHEN c.export_severity != '' THEN c.export_severity ELSE c.severity END, ''),
	coalesce(c.export_cvss, c.cvss_v3), coalesce(u.name, ''), coalesce(u.update_id, ''), coalesce(u.url, ''), v.paths, v.first_seen, v.last_seen,
	coalesce(c.exploitability_level, ''), v.flags, v.row_id, v.extra
FROM machine_vulnerabilities v
JOIN tvm_devices d ON d.key = v.device_key
JOIN software_versions s ON s.key = v.software_key
LEFT JOIN cves c ON c.key = v.cve_key
LEFT JOIN security_updates u ON u.key = v.update_key`

func scanVulnRow(rows interface{ Scan(...any) error }) (mdebridge.MachineVulnerability, error) {
	var r mdebridge.MachineVulnerability
	var cvss sql.NullFloat64
	var paths, rowID, extra sql.NullString
	var first, last, flags int64
	err := rows.Scan(&r.DeviceID, &r.DeviceName, &r.RBACGroupName, &r.RBACGroupID, &r.OSPlatform, &r.OSVersion, &r.OSArchitecture,
		&r.SoftwareVendor, &r.SoftwareName, &r.SoftwareVersion, &r.CVEID, &r.Severity, &cvss,
		&r.RecommendedSecurityUpdate, &r.RecommendedSecurityUpdateID, &r.RecommendedSecurityUpdateURL, &paths, &first, &last,
		&r.ExploitabilityLevel, &flags, &rowID, &extra)
	if err != nil {
		return r, err
	}
	if cvss.Valid {
		r.CVSSScore = &cvss.Float64
	}
	r.DiskPaths, r.RegistryPaths = splitPaths(paths)
	r.FirstSeen, r.LastSeen = fromMilli(first), fromMilli(last)
	if flags&1 != 0 {
		v := flags&2 != 0
		r.SecurityUpdateAvailable = &v
	}
	r.RecommendationReference = "va-_-" + r.SoftwareVendor + "-_-" + r.SoftwareName
	if rowID.Valid {
		r.ID = rowID.String
	} else {
		r.ID = r.DeviceID + "_" + r.SoftwareVendor + "_" + r.SoftwareName + "_" + r.SoftwareVersion + "_" + r.CVEID
	}
	if extra.Valid {
		r.Extra = json.RawMessage(extra.String)
	}
	if r.ExploitabilityLevel == "" && r.CVEID == "" {
		r.ExploitabilityLevel = "NoExploit"
	}
	return r, nil
}

func queryVulnRows(ctx context.Context, tx *sql.Tx, tail string, args ...any) ([]mdebridge.MachineVulnerability, error) {
	rows, err := tx.QueryContext(ctx, vulnRowQuery+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("query vulnerability rows: %w", err)
	}
	defer rows.Close()
	out := []mdebridge.MachineVulnerability{}
	for rows.Next() {
		r, err := scanVulnRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// deviceKey finds a device's key; ok is false when the exports never named it.
func deviceKey(ctx context.Context, tx *sql.Tx, deviceID string) (int64, bool, error) {
	var k int64
	err := tx.QueryRowContext(ctx, `SELECT key FROM tvm_devices WHERE device_id = ?`, strings.ToLower(deviceID)).Scan(&k)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return k, err == nil, err
}

// catalogueEntry reads what the store has of a CVE as a Vulnerability: the
// catalogue's object when it has one, else what the exports said.
type cveRow struct {
	key                 int64
	id                  string
	raw                 sql.NullString
	severity, exportSev string
	cvss, exportCVSS    sql.NullFloat64
	published, updated  string
	public              bool
	exploit             string
	exposed             int
	products            string
	inCatalogue         bool
	machines            int
}

const cveColumns = `c.key, c.id, c.raw, c.severity, c.export_severity, c.cvss_v3, c.export_cvss, c.published_on, c.updated_on,
	c.public_exploit, c.exploitability_level, c.exposed_machines, c.products, c.in_catalogue`

func scanCVE(rows interface{ Scan(...any) error }, extra ...any) (cveRow, error) {
	var c cveRow
	err := rows.Scan(append([]any{&c.key, &c.id, &c.raw, &c.severity, &c.exportSev, &c.cvss, &c.exportCVSS, &c.published, &c.updated,
		&c.public, &c.exploit, &c.exposed, &c.products, &c.inCatalogue}, extra...)...)
	return c, err
}

// lenientVulnerability decodes a stored catalogue object without failing
// on a timestamp form encoding/json does not know.
type lenientVulnerability struct {
	mdebridge.Vulnerability
	PublishedOn, UpdatedOn, FirstDetected any
}

func (c cveRow) summary() mdebridge.VulnerabilitySummary {
	s := mdebridge.VulnerabilitySummary{Machines: c.exposed, InCatalogue: c.inCatalogue}
	if c.raw.Valid {
		var lv lenientVulnerability
		if json.Unmarshal([]byte(c.raw.String), &lv) == nil {
			s.Vulnerability = lv.Vulnerability
		}
		s.Raw = json.RawMessage(c.raw.String)
	}
	v := &s.Vulnerability
	v.ID = c.id
	if v.Name == "" {
		v.Name = c.id
	}
	if v.Severity = c.severity; v.Severity == "" {
		v.Severity = c.exportSev
	}
	if c.cvss.Valid {
		v.CVSSV3 = c.cvss.Float64
	} else if c.exportCVSS.Valid {
		v.CVSSV3 = c.exportCVSS.Float64
	}
	v.PublishedOn, v.UpdatedOn = parseTime(c.published), parseTime(c.updated)
	exploit := c.exploit == "ExploitIsPublic" || c.exploit == "ExploitIsVerified" || c.exploit == "ExploitIsInKit"
	v.PublicExploit = v.PublicExploit || c.public || exploit
	v.ExploitVerified = v.ExploitVerified || c.exploit == "ExploitIsVerified" || c.exploit == "ExploitIsInKit"
	v.ExploitInKit = v.ExploitInKit || c.exploit == "ExploitIsInKit"
	if !c.raw.Valid {
		// Known from the exports only: an object in the catalogue's shape.
		s.Raw, _ = json.Marshal(map[string]any{"id": v.ID, "name": v.Name, "severity": v.Severity, "cvssV3": v.CVSSV3,
			"publicExploit": v.PublicExploit, "exploitVerified": v.ExploitVerified, "exploitInKit": v.ExploitInKit})
	}
	if c.products != "" {
		s.Software = strings.Split(c.products, "\x1f")
	}
	if c.machines >= 0 {
		s.Machines = c.machines
	}
	return s
}

// FindVulnerabilities lists the CVEs found in the tenant, most severe first.
func (db *DB) FindVulnerabilities(ctx context.Context, f mdebridge.VulnerabilityFilter) ([]mdebridge.VulnerabilitySummary, int, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	var conds []string
	var args []any
	add := func(cond string, a ...any) {
		conds = append(conds, cond)
		args = append(args, a...)
	}
	if f.IncludeUnseen {
		add(`(c.exposed_machines > 0 OR c.in_catalogue = 1)`)
	} else {
		add(`c.exposed_machines > 0`)
	}
	if f.Severity != "" {
		rank := mdebridge.SeverityRank(f.Severity)
		if rank == 0 {
			return nil, 0, fmt.Errorf("severity %q is not one of Low, Medium, High, Critical", f.Severity)
		}
		add(severityRankSQL+` >= ?`, rank)
	}
	if f.MinCVSS > 0 {
		add(`coalesce(c.cvss_v3, c.export_cvss) >= ?`, f.MinCVSS)
	}
	if f.ExploitOnly {
		add(exploitSQL)
	}
	if f.CVE != "" {
		add(`(c.id = ? OR c.id LIKE ? ESCAPE '\')`, strings.ToUpper(f.CVE), likeEscape(strings.ToUpper(f.CVE))+"%")
	}
	// Within a machine or a product, count that scope's machines.
	count := `-1`
	var countArgs []any
	if f.Machine != "" {
		k, ok, err := deviceKey(ctx, tx, f.Machine)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			return []mdebridge.VulnerabilitySummary{}, 0, nil
		}
		add(`c.key IN (SELECT cve_key FROM machine_vulnerabilities WHERE device_key = ?)`, k)
		count = `1`
	}
	if f.Software != "" {
		versions := `SELECT key FROM software_versions WHERE vendor || '-_-' || name = ? COLLATE NOCASE OR name = ? COLLATE NOCASE`
		add(`c.key IN (SELECT cve_key FROM cve_software WHERE software_key IN (`+versions+`))`, f.Software, f.Software)
		if f.Machine == "" {
			count = `(SELECT count(DISTINCT v.device_key) FROM machine_vulnerabilities v INDEXED BY machine_vulnerabilities_cve
				WHERE v.cve_key = c.key AND v.software_key IN (` + versions + `))`
			countArgs = []any{f.Software, f.Software}
		}
	}
	where := " WHERE " + strings.Join(conds, " AND ")
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM cves c`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count vulnerabilities: %w", err)
	}
	q := `SELECT ` + cveColumns + `, ` + count + ` FROM cves c` + where +
		` ORDER BY ` + severityRankSQL + ` DESC, coalesce(c.cvss_v3, c.export_cvss) DESC, c.exposed_machines DESC, c.id` + limitOffset(f.Limit, f.Offset)
	rows, err := tx.QueryContext(ctx, q, append(countArgs, args...)...)
	if err != nil {
		return nil, 0, fmt.Errorf("query vulnerabilities: %w", err)
	}
	defer rows.Close()
	out := []mdebridge.VulnerabilitySummary{}
	for rows.Next() {
		var machines int
		c, err := scanCVE(rows, &machines)
		if err != nil {
			return nil, 0, err
		}
		c.machines = machines
		out = append(out, c.summary())
	}
	return out, total, rows.Err()
}

// FindVulnerability returns one CVE with the machines that have it.
func (db *DB) FindVulnerability(ctx context.Context, id string, limit int) (*mdebridge.VulnerabilityDetail, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	id = strings.ToUpper(strings.TrimSpace(id))
	c, err := scanCVE(tx.QueryRowContext(ctx, `SELECT `+cveColumns+` FROM cves c WHERE c.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		var near []string
		rows, err := tx.QueryContext(ctx, `SELECT id FROM cves WHERE id LIKE ? ESCAPE '\' AND (exposed_machines > 0 OR in_catalogue = 1) ORDER BY exposed_machines DESC, id LIMIT 5`,
			likeEscape(id[:min(len(id), 9)])+"%")
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if rows.Scan(&n) == nil {
				near = append(near, n)
			}
		}
		return nil, &mdebridge.NotFoundError{Kind: "vulnerability", Key: id, Near: near}
	}
	if err != nil {
		return nil, err
	}
	c.machines = -1
	d := &mdebridge.VulnerabilityDetail{VulnerabilitySummary: c.summary()}
	rows, err := queryVulnRows(ctx, tx, ` WHERE v.cve_key = ? ORDER BY d.device_name COLLATE NOCASE, d.device_id, s.name, s.version`+limitOffset(limit, 0), c.key)
	if err != nil {
		return nil, err
	}
	inInventory, err := knownMachines(ctx, tx, c.key)
	if err != nil {
		return nil, err
	}
	d.Exposed = make([]mdebridge.ExposedMachine, len(rows))
	for i, r := range rows {
		d.Exposed[i] = mdebridge.ExposedMachine{MachineVulnerability: r, InInventory: inInventory[r.DeviceID]}
	}
	return d, nil
}

// knownMachines says which devices with a CVE the machine inventory knows.
func knownMachines(ctx context.Context, tx *sql.Tx, cveKey int64) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT d.device_id FROM machine_vulnerabilities v JOIN tvm_devices d ON d.key = v.device_key
		WHERE v.cve_key = ? AND EXISTS (SELECT 1 FROM machines m WHERE m.id = d.device_id AND m.retired_at IS NULL)`, cveKey)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}

const productColumns = `p.vendor, p.name, p.weaknesses, p.public_exploit, p.exposed_machines, p.installed_machines, p.versions, p.eos_status`

func scanProduct(rows interface{ Scan(...any) error }) (mdebridge.SoftwareSummary, error) {
	var s mdebridge.SoftwareSummary
	err := rows.Scan(&s.Vendor, &s.Name, &s.Weaknesses, &s.PublicExploit, &s.ExposedMachines, &s.InstalledMachines, &s.Versions, &s.EndOfSupportStatus)
	s.ID = s.Vendor + "-_-" + s.Name
	return s, err
}

// FindSoftware lists products, the most exposed first.
func (db *DB) FindSoftware(ctx context.Context, f mdebridge.SoftwareFilter) ([]mdebridge.SoftwareSummary, int, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	conds := []string{`(p.installed_machines > 0 OR p.exposed_machines > 0)`}
	var args []any
	if f.Vendor != "" {
		conds = append(conds, `p.vendor = ? COLLATE NOCASE`)
		args = append(args, f.Vendor)
	}
	if f.Name != "" {
		conds = append(conds, `p.name LIKE ? ESCAPE '\'`)
		args = append(args, likeEscape(f.Name)+"%")
	}
	if f.Vulnerable {
		conds = append(conds, `p.exposed_machines > 0`)
	}
	if f.EndOfSupport {
		conds = append(conds, `p.eos_status LIKE 'EOS%'`)
	}
	if f.Machine != "" {
		k, _, err := deviceKey(ctx, tx, f.Machine)
		if err != nil {
			return nil, 0, err
		}
		conds = append(conds, `EXISTS (SELECT 1 FROM machine_software m JOIN software_versions s ON s.key = m.software_key
			WHERE m.device_key = ? AND s.vendor = p.vendor AND s.name = p.name)`)
		args = append(args, k)
	}
	where := " WHERE " + strings.Join(conds, " AND ")
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM software_products p`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count software: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+productColumns+` FROM software_products p`+where+
		` ORDER BY p.exposed_machines DESC, p.weaknesses DESC, p.installed_machines DESC, p.vendor, p.name`+limitOffset(f.Limit, f.Offset), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("query software: %w", err)
	}
	defer rows.Close()
	out := []mdebridge.SoftwareSummary{}
	for rows.Next() {
		s, err := scanProduct(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, s)
	}
	return out, total, rows.Err()
}

// FindSoftwareProduct looks a product up by id (vendor-_-name) or name.
func (db *DB) FindSoftwareProduct(ctx context.Context, key string) (*mdebridge.SoftwareDetail, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	key = strings.TrimSpace(key)
	rows, err := tx.QueryContext(ctx, `SELECT `+productColumns+` FROM software_products p
		WHERE (p.vendor || '-_-' || p.name = ? COLLATE NOCASE OR p.name = ? COLLATE NOCASE) AND (p.installed_machines > 0 OR p.exposed_machines > 0)
		ORDER BY p.vendor || '-_-' || p.name = ? COLLATE NOCASE DESC, p.installed_machines DESC`, key, key, key)
	if err != nil {
		return nil, err
	}
	var found []mdebridge.SoftwareSummary
	for rows.Next() {
		s, err := scanProduct(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		found = append(found, s)
	}
	rows.Close()
	switch {
	case len(found) == 0:
		var near []string
		nr, err := tx.QueryContext(ctx, `SELECT vendor || '-_-' || name FROM software_products WHERE name LIKE ? ESCAPE '\' OR vendor || '-_-' || name LIKE ? ESCAPE '\'
			ORDER BY installed_machines DESC LIMIT 5`, "%"+likeEscape(key[:min(len(key), 4)])+"%", likeEscape(key[:min(len(key), 4)])+"%")
		if err != nil {
			return nil, err
		}
		defer nr.Close()
		for nr.Next() {
			var n string
			if nr.Scan(&n) == nil {
				near = append(near, n)
			}
		}
		return nil, &mdebridge.NotFoundError{Kind: "software", Key: key, Near: near}
	case len(found) > 1 && !strings.EqualFold(found[0].ID, key):
		cands := make([]string, len(found))
		for i, s := range found {
			cands[i] = s.ID
		}
		return nil, &mdebridge.AmbiguousError{Key: key, Candidates: cands}
	}
	d := &mdebridge.SoftwareDetail{SoftwareSummary: found[0]}
	vr, err := tx.QueryContext(ctx, `SELECT version, installations, weaknesses, exposed_machines FROM software_versions
		WHERE vendor = ? AND name = ? AND (installations > 0 OR exposed_machines > 0) ORDER BY installations DESC, version`, d.Vendor, d.Name)
	if err != nil {
		return nil, err
	}
	for vr.Next() {
		var v mdebridge.SoftwareVersion
		if err := vr.Scan(&v.Version, &v.Installations, &v.Vulnerabilities, &v.ExposedMachines); err != nil {
			vr.Close()
			return nil, err
		}
		d.Distributions = append(d.Distributions, v)
	}
	vr.Close()
	cr, err := tx.QueryContext(ctx, `SELECT `+cveColumns+` FROM cves c WHERE c.key IN (
		SELECT x.cve_key FROM cve_software x JOIN software_versions s ON s.key = x.software_key WHERE s.vendor = ? AND s.name = ?)
		ORDER BY `+severityRankSQL+` DESC, coalesce(c.cvss_v3, c.export_cvss) DESC, c.id`, d.Vendor, d.Name)
	if err != nil {
		return nil, err
	}
	defer cr.Close()
	for cr.Next() {
		c, err := scanCVE(cr)
		if err != nil {
			return nil, err
		}
		c.machines = -1
		d.Vulnerabilities = append(d.Vulnerabilities, c.summary())
	}
	return d, cr.Err()
}

// MachineExposure sums up one machine's rows.
func (db *DB) MachineExposure(ctx context.Context, deviceID string) (*mdebridge.MachineExposure, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	e := &mdebridge.MachineExposure{DeviceID: strings.ToLower(deviceID), Vulnerabilities: map[string]int{}}
	k, ok, err := deviceKey(ctx, tx, deviceID)
	if err != nil || !ok {
		return e, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+severityRankSQL+` AS rank, count(*), count(DISTINCT v.cve_key) FROM machine_vulnerabilities v
		JOIN cves c ON c.key = v.cve_key WHERE v.device_key = ? AND v.cve_key > 0 GROUP BY rank`, k)
	if err != nil {
		return nil, err
	}
	names := []string{"", "Low", "Medium", "High", "Critical"}
	for rows.Next() {
		var rank, n, distinct int
		if err := rows.Scan(&rank, &n, &distinct); err != nil {
			rows.Close()
			return nil, err
		}
		e.Vulnerabilities[names[rank]] += n
	}
	rows.Close()
	if err := tx.QueryRowContext(ctx, `SELECT count(DISTINCT cve_key), count(DISTINCT software_key) FROM machine_vulnerabilities WHERE device_key = ? AND cve_key > 0`, k).
		Scan(&e.CVEs, &e.VulnerableSoftware); err != nil {
		return nil, err
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(eos_status LIKE 'EOS%'), 0) FROM machine_software WHERE device_key = ?`, k).
		Scan(&e.Software, &e.EndOfSupport); err != nil {
		return nil, err
	}
	worst, err := queryVulnRows(ctx, tx, ` WHERE v.device_key = ? AND v.cve_key > 0
		ORDER BY `+severityRankSQL+` DESC, coalesce(c.export_cvss, c.cvss_v3) DESC, c.id LIMIT 1`, k)
	if err != nil {
		return nil, err
	}
	if len(worst) == 1 {
		e.MostSevere = &worst[0]
	}
	return e, nil
}

// MachineVulnerabilities lists a machine's rows, most severe first.
func (db *DB) MachineVulnerabilities(ctx context.Context, deviceID string) ([]mdebridge.MachineVulnerability, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	k, ok, err := deviceKey(ctx, tx, deviceID)
	if err != nil || !ok {
		return []mdebridge.MachineVulnerability{}, err
	}
	return queryVulnRows(ctx, tx, ` WHERE v.device_key = ? ORDER BY `+severityRankSQL+` DESC, coalesce(c.export_cvss, c.cvss_v3) DESC, c.id, s.name, s.version`, k)
}

// MachineSoftware lists a machine's inventory.
func (db *DB) MachineSoftware(ctx context.Context, deviceID string) ([]mdebridge.SoftwareInstall, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	out := []mdebridge.SoftwareInstall{}
	k, ok, err := deviceKey(ctx, tx, deviceID)
	if err != nil || !ok {
		return out, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT d.device_id, d.device_name, d.rbac_group_name, d.os_platform, s.vendor, s.name, s.version,
		m.weaknesses, m.paths, m.first_seen, m.eos_status, m.eos_date, m.extra
		FROM machine_software m JOIN tvm_devices d ON d.key = m.device_key JOIN software_versions s ON s.key = m.software_key
		WHERE m.device_key = ? ORDER BY s.vendor, s.name, s.version`, k)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r mdebridge.SoftwareInstall
		var paths, extra sql.NullString
		var first, eos int64
		if err := rows.Scan(&r.DeviceID, &r.DeviceName, &r.RBACGroupName, &r.OSPlatform, &r.SoftwareVendor, &r.SoftwareName, &r.SoftwareVersion,
			&r.NumberOfWeaknesses, &paths, &first, &r.EndOfSupportStatus, &eos, &extra); err != nil {
			return nil, err
		}
		r.DiskPaths, r.RegistryPaths = splitPaths(paths)
		r.FirstSeen, r.EndOfSupportDate = fromMilli(first), fromMilli(eos)
		if extra.Valid {
			r.Extra = json.RawMessage(extra.String)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

var _ mdebridge.ExposureStore = (*DB)(nil)

// exposureCounts adds the figures the exposure loads keep to c.
func exposureCounts(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, c mdebridge.Counts) error {
	rows, err := q.QueryContext(ctx, `SELECT name, value FROM exposure_counts`)
	if err != nil {
		return fmt.Errorf("count exposure: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			return err
		}
		c[name] = n
	}
	return rows.Err()
}
