package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/mdebridge/mdebridge"
)

const machineCols = `id, computer_dns_name, os_platform, os_version, os_processor, os_architecture, version, os_build,
	health_status, onboarding_status, defender_av_status, risk_score, exposure_level, device_value,
	rbac_group_id, rbac_group_name, last_ip_address, last_external_ip_address, agent_version,
	is_aad_joined, aad_device_id, managed_by, managed_by_status, merged_into_machine_id,
	is_potential_duplication, is_excluded, exclusion_reason,
	vm_id, vm_cloud_provider, vm_resource_id, vm_subscription_id, first_seen, last_seen`

const upsertMachineSQL = `INSERT INTO machines (` + machineCols + `, raw, seen_run, synced_at, retired_at)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL)
ON CONFLICT (id) DO UPDATE SET
	computer_dns_name = excluded.computer_dns_name, os_platform = excluded.os_platform, os_version = excluded.os_version,
	os_processor = excluded.os_processor, os_architecture = excluded.os_architecture, version = excluded.version,
	os_build = excluded.os_build, health_status = excluded.health_status, onboarding_status = excluded.onboarding_status,
	defender_av_status = excluded.defender_av_status, risk_score = excluded.risk_score, exposure_level = excluded.exposure_level,
	device_value = excluded.device_value, rbac_group_id = excluded.rbac_group_id, rbac_group_name = excluded.rbac_group_name,
	last_ip_address = excluded.last_ip_address, last_external_ip_address = excluded.last_external_ip_address,
	agent_version = excluded.agent_version, is_aad_joined = excluded.is_aad_joined, aad_device_id = excluded.aad_device_id,
	managed_by = excluded.managed_by, managed_by_status = excluded.managed_by_status,
	merged_into_machine_id = excluded.merged_into_machine_id, is_potential_duplication = excluded.is_potential_duplication,
	is_excluded = excluded.is_excluded, exclusion_reason = excluded.exclusion_reason,
	vm_id = excluded.vm_id, vm_cloud_provider = excluded.vm_cloud_provider, vm_resource_id = excluded.vm_resource_id,
	vm_subscription_id = excluded.vm_subscription_id, first_seen = excluded.first_seen, last_seen = excluded.last_seen,
	raw = excluded.raw, seen_run = excluded.seen_run, synced_at = excluded.synced_at, retired_at = NULL`

// UpsertMachines stores one page of machines as seen by run runID, in one
// transaction. A machine whose upstream JSON has not changed only gets its
// generation stamped; the others are rewritten with their IPs and tags.
func (db *DB) UpsertMachines(ctx context.Context, runID int64, machines []mdebridge.Machine) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := fmtTime(db.now())
	stmt := func(q string) (*sql.Stmt, error) { return tx.PrepareContext(ctx, q) }
	touch, err := stmt(`UPDATE machines SET seen_run = ?, synced_at = ?, retired_at = NULL WHERE id = ? AND raw = ?`)
	if err != nil {
		return err
	}
	upsert, err := stmt(upsertMachineSQL)
	if err != nil {
		return err
	}
	delIPs, err := stmt(`DELETE FROM machine_ips WHERE machine_id = ?`)
	if err != nil {
		return err
	}
	delTags, err := stmt(`DELETE FROM machine_tags WHERE machine_id = ?`)
	if err != nil {
		return err
	}
	insIP, err := stmt(`INSERT INTO machine_ips (machine_id, ip, mac, type, status) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	insTag, err := stmt(`INSERT INTO machine_tags (machine_id, tag) VALUES (?, ?)`)
	if err != nil {
		return err
	}
	for i := range machines {
		m := &machines[i]
		raw := string(m.Raw)
		if raw == "" {
			return fmt.Errorf("machine %s has no raw JSON", m.ID)
		}
		res, err := touch.ExecContext(ctx, runID, now, m.ID, raw)
		if err != nil {
			return fmt.Errorf("machine %s: %w", m.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			continue
		}
		vm := m.VMMetadata
		if vm == nil {
			vm = &mdebridge.VMMetadata{}
		}
		if _, err := upsert.ExecContext(ctx, m.ID, m.ComputerDNSName, m.OSPlatform, m.OSVersion, m.OSProcessor, m.OSArchitecture,
			m.Version, m.OSBuild, m.HealthStatus, m.OnboardingStatus, m.DefenderAVStatus, m.RiskScore, m.ExposureLevel,
			m.DeviceValue, m.RBACGroupID, m.RBACGroupName, m.LastIPAddress, m.LastExternalIPAddress, m.AgentVersion,
			boolInt(m.IsAADJoined), m.AADDeviceID, m.ManagedBy, m.ManagedByStatus, m.MergedIntoMachineID,
			boolInt(m.IsPotentialDuplication), boolInt(m.IsExcluded), m.ExclusionReason,
			vm.VMID, vm.CloudProvider, vm.ResourceID, vm.SubscriptionID, fmtTime(m.FirstSeen), fmtTime(m.LastSeen),
			raw, runID, now); err != nil {
			return fmt.Errorf("machine %s: %w", m.ID, err)
		}
		if _, err := delIPs.ExecContext(ctx, m.ID); err != nil {
			return err
		}
		if _, err := delTags.ExecContext(ctx, m.ID); err != nil {
			return err
		}
		for _, ip := range m.IPAddresses {
			if _, err := insIP.ExecContext(ctx, m.ID, ip.IPAddress, ip.MACAddress, ip.Type, ip.OperationalStatus); err != nil {
				return err
			}
		}
		for _, tag := range m.MachineTags {
			if _, err := insTag.ExecContext(ctx, m.ID, tag); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// RetireMachinesNotSeen retires every live machine that run runID did not see.
func (db *DB) RetireMachinesNotSeen(ctx context.Context, runID int64) (int, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE machines SET retired_at = ? WHERE retired_at IS NULL AND seen_run < ?`, fmtTime(db.now()), runID)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), tx.Commit()
}

// machineQuery selects machines with their tags.
const machineQuery = `SELECT ` + machineCols + `, raw, synced_at, retired_at,
	(SELECT group_concat(tag, char(31)) FROM machine_tags t WHERE t.machine_id = m.id) AS tags
FROM machines m`

func scanMachine(rows interface{ Scan(...any) error }) (mdebridge.Machine, error) {
	var m mdebridge.Machine
	var vm mdebridge.VMMetadata
	var firstSeen, lastSeen, raw, syncedAt string
	var retiredAt, tags sql.NullString
	var aad, dup, excl int
	err := rows.Scan(&m.ID, &m.ComputerDNSName, &m.OSPlatform, &m.OSVersion, &m.OSProcessor, &m.OSArchitecture, &m.Version, &m.OSBuild,
		&m.HealthStatus, &m.OnboardingStatus, &m.DefenderAVStatus, &m.RiskScore, &m.ExposureLevel, &m.DeviceValue,
		&m.RBACGroupID, &m.RBACGroupName, &m.LastIPAddress, &m.LastExternalIPAddress, &m.AgentVersion,
		&aad, &m.AADDeviceID, &m.ManagedBy, &m.ManagedByStatus, &m.MergedIntoMachineID,
		&dup, &excl, &m.ExclusionReason, &vm.VMID, &vm.CloudProvider, &vm.ResourceID, &vm.SubscriptionID,
		&firstSeen, &lastSeen, &raw, &syncedAt, &retiredAt, &tags)
	if err != nil {
		return m, err
	}
	m.IsAADJoined, m.IsPotentialDuplication, m.IsExcluded = aad == 1, dup == 1, excl == 1
	if vm != (mdebridge.VMMetadata{}) {
		m.VMMetadata = &vm
	}
	m.FirstSeen, m.LastSeen, m.SyncedAt = parseTime(firstSeen), parseTime(lastSeen), parseTime(syncedAt)
	m.Raw = []byte(raw)
	if retiredAt.Valid {
		t := parseTime(retiredAt.String)
		m.RetiredAt = &t
	}
	m.MachineTags = []string{}
	if tags.Valid && tags.String != "" {
		m.MachineTags = strings.Split(tags.String, "\x1f")
	}
	return m, nil
}

// machineWhere turns a filter into a WHERE clause and its arguments.
func machineWhere(f mdebridge.MachineFilter) (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, a ...any) {
		conds = append(conds, cond)
		args = append(args, a...)
	}
	if !f.IncludeRetired {
		add(`m.retired_at IS NULL`)
	}
	if f.OSPlatform != "" {
		add(`m.os_platform = ? COLLATE NOCASE`, f.OSPlatform)
	}
	if f.HealthStatus != "" {
		add(`m.health_status = ? COLLATE NOCASE`, f.HealthStatus)
	}
	if f.RiskScore != "" {
		add(`m.risk_score = ? COLLATE NOCASE`, f.RiskScore)
	}
	if f.ExposureLevel != "" {
		add(`m.exposure_level = ? COLLATE NOCASE`, f.ExposureLevel)
	}
	if f.Tag != "" {
		add(`EXISTS (SELECT 1 FROM machine_tags t WHERE t.machine_id = m.id AND t.tag = ? COLLATE NOCASE)`, f.Tag)
	}
	if f.RBACGroup != "" {
		if id, err := strconv.ParseInt(f.RBACGroup, 10, 64); err == nil {
			add(`(m.rbac_group_id = ? OR m.rbac_group_name = ? COLLATE NOCASE)`, id, f.RBACGroup)
		} else {
			add(`m.rbac_group_name = ? COLLATE NOCASE`, f.RBACGroup)
		}
	}
	if f.NamePrefix != "" {
		add(`m.computer_dns_name LIKE ? ESCAPE '\'`, likeEscape(f.NamePrefix)+"%")
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// FindMachines returns the machines matching f, ordered by name, and the total.
func (db *DB) FindMachines(ctx context.Context, f mdebridge.MachineFilter) ([]mdebridge.Machine, int, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	where, args := machineWhere(f)
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM machines m`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count machines: %w", err)
	}
	tail := where + ` ORDER BY m.computer_dns_name COLLATE NOCASE, m.id`
	if f.Limit > 0 {
		tail += fmt.Sprintf(" LIMIT %d", f.Limit)
	} else if f.Offset > 0 {
		tail += " LIMIT -1"
	}
	if f.Offset > 0 {
		tail += fmt.Sprintf(" OFFSET %d", f.Offset)
	}
	ms, err := queryMachines(ctx, tx, tail, args...)
	if err != nil {
		return nil, 0, err
	}
	return ms, total, nil
}

// queryMachines selects machines by tail (WHERE, ORDER BY, LIMIT of the
// machines table aliased m), with their tags and IPs.
func queryMachines(ctx context.Context, tx *sql.Tx, tail string, args ...any) ([]mdebridge.Machine, error) {
	rows, err := tx.QueryContext(ctx, machineQuery+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("query machines: %w", err)
	}
	defer rows.Close()
	var out []mdebridge.Machine
	index := map[string]int{}
	for rows.Next() {
		m, err := scanMachine(rows)
		if err != nil {
			return nil, err
		}
		index[m.ID] = len(out)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return out, nil
	}
	// IPs of the selected machines, in one pass.
	ipRows, err := tx.QueryContext(ctx, `SELECT machine_id, ip, mac, type, status FROM machine_ips
		WHERE machine_id IN (SELECT m.id FROM machines m`+tail+`) ORDER BY rowid`, args...)
	if err != nil {
		return nil, fmt.Errorf("query machine IPs: %w", err)
	}
	defer ipRows.Close()
	for ipRows.Next() {
		var id string
		var ip mdebridge.IPAddress
		if err := ipRows.Scan(&id, &ip.IPAddress, &ip.MACAddress, &ip.Type, &ip.OperationalStatus); err != nil {
			return nil, err
		}
		if i, ok := index[id]; ok {
			out[i].IPAddresses = append(out[i].IPAddresses, ip)
		}
	}
	return out, ipRows.Err()
}

var deviceID = regexp.MustCompile(`^[0-9a-fA-F]{40}$`)

// FindMachine looks a machine up by device id, computer name (full, or the
// host part before the first dot) or IP address. Live machines are preferred;
// a retired one is returned only when nothing live matches its id.
func (db *DB) FindMachine(ctx context.Context, key string) (*mdebridge.Machine, error) {
	key = strings.TrimSpace(key)
	if key == "" {
		return nil, &mdebridge.NotFoundError{Kind: "machine", Key: key}
	}
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	lookups := []struct {
		cond string
		args []any
	}{
		{`m.id = ?`, []any{strings.ToLower(key)}},
		{`m.retired_at IS NULL AND m.computer_dns_name = ? COLLATE NOCASE`, []any{key}},
		{`m.retired_at IS NULL AND m.computer_dns_name LIKE ? ESCAPE '\'`, []any{likeEscape(key) + ".%"}},
	}
	if _, err := netip.ParseAddr(key); err == nil {
		lookups = append(lookups, struct {
			cond string
			args []any
		}{`m.retired_at IS NULL AND (m.last_ip_address = ? OR m.id IN (SELECT machine_id FROM machine_ips WHERE ip = ?))`, []any{key, key}})
	}
	if !deviceID.MatchString(key) {
		lookups = lookups[1:]
	}
	for _, l := range lookups {
		ms, err := queryMachines(ctx, tx, ` WHERE `+l.cond+` ORDER BY m.computer_dns_name COLLATE NOCASE, m.id LIMIT 20`, l.args...)
		if err != nil {
			return nil, err
		}
		switch len(ms) {
		case 0:
			continue
		case 1:
			return &ms[0], nil
		default:
			cands := make([]string, len(ms))
			for i, m := range ms {
				cands[i] = fmt.Sprintf("%s (%s)", m.ComputerDNSName, m.ID)
			}
			return nil, &mdebridge.AmbiguousError{Key: key, Candidates: cands}
		}
	}
	near, err := nearNames(ctx, tx, key)
	if err != nil {
		return nil, err
	}
	return nil, &mdebridge.NotFoundError{Kind: "machine", Key: key, Near: near}
}

// nearNames suggests up to five live machine names close to key.
func nearNames(ctx context.Context, tx *sql.Tx, key string) ([]string, error) {
	host, _, _ := strings.Cut(key, ".")
	pattern := "%" + likeEscape(host) + "%"
	if len(host) > 4 {
		pattern = likeEscape(host[:4]) + "%"
	}
	rows, err := tx.QueryContext(ctx, `SELECT computer_dns_name FROM machines WHERE retired_at IS NULL AND computer_dns_name LIKE ? ESCAPE '\'
		ORDER BY length(computer_dns_name), computer_dns_name LIMIT 5`, pattern)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// errNoRun is returned for unknown runs.
var errNoRun = errors.New("no such sync run")

var _ mdebridge.MachineStore = (*DB)(nil)
