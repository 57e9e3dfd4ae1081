package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"regexp"
	"slices"
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

// machineInsertCols are the columns an upsert writes, in order.
const machineInsertCols = machineCols + `, raw, raw_hash, seen_run, synced_at, retired_at`

// machineUpdateSet refreshes every column of an existing machine from excluded.
var machineUpdateSet = func() string {
	var sets []string
	for _, c := range strings.Split(machineInsertCols, ",") {
		c = strings.TrimSpace(c)
		if c != "id" {
			sets = append(sets, c+" = excluded."+c)
		}
	}
	return strings.Join(sets, ", ")
}()

func machineRow(m *mdebridge.Machine, hash, runID int64, now string) []any {
	vm := m.VMMetadata
	if vm == nil {
		vm = &mdebridge.VMMetadata{}
	}
	return []any{m.ID, m.ComputerDNSName, m.OSPlatform, m.OSVersion, m.OSProcessor, m.OSArchitecture,
		m.Version, m.OSBuild, m.HealthStatus, m.OnboardingStatus, m.DefenderAVStatus, m.RiskScore, m.ExposureLevel,
		m.DeviceValue, m.RBACGroupID, m.RBACGroupName, m.LastIPAddress, m.LastExternalIPAddress, m.AgentVersion,
		boolInt(m.IsAADJoined), m.AADDeviceID, m.ManagedBy, m.ManagedByStatus, m.MergedIntoMachineID,
		boolInt(m.IsPotentialDuplication), boolInt(m.IsExcluded), m.ExclusionReason,
		vm.VMID, vm.CloudProvider, vm.ResourceID, vm.SubscriptionID, fmtTime(m.FirstSeen), fmtTime(m.LastSeen),
		string(m.Raw), hash, runID, now, nil}
}

func isLoopback(ip mdebridge.IPAddress) bool {
	if ip.Type == "SoftwareLoopback" {
		return true
	}
	a, err := netip.ParseAddr(ip.IPAddress)
	return err == nil && a.IsLoopback()
}

// rawHash fingerprints a machine's upstream JSON.
func rawHash(raw []byte) int64 {
	h := fnv.New64a()
	h.Write(raw)
	return int64(h.Sum64())
}

// UpsertMachines stores one page of machines as seen by run runID, in one
// transaction. A machine whose upstream JSON has not changed is only stamped
// with the run; new and changed ones are written with their IPs and tags.
// Work is done in multi-row statements: per-statement overhead, not SQLite,
// is what a row-at-a-time upsert of 100,000 machines spends its time on.
func (db *DB) UpsertMachines(ctx context.Context, runID int64, machines []mdebridge.Machine) error {
	// The last occurrence of an id in a page wins.
	index := make(map[string]int, len(machines))
	for i := range machines {
		if len(machines[i].Raw) == 0 {
			return fmt.Errorf("machine %s has no raw JSON", machines[i].ID)
		}
		index[machines[i].ID] = i
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	b := newBatcher(tx)
	defer b.close()

	// In key order, so that the inserts sweep each index once instead of
	// landing on a random page each (device ids are random hex).
	ids := make([]any, 0, len(index))
	for i := range machines {
		if index[machines[i].ID] == i {
			ids = append(ids, machines[i].ID)
		}
	}
	slices.SortFunc(ids, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
	// Sub-batches bound the memory of statement arguments.
	const batch = 1000
	now := fmtTime(db.now())
	for len(ids) > 0 {
		n := min(batch, len(ids))
		if err := upsertBatch(ctx, b, machines, index, ids[:n], runID, now); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return tx.Commit()
}

// upsertBatch writes the machines named by ids (sorted).
func upsertBatch(ctx context.Context, b *batcher, machines []mdebridge.Machine, index map[string]int, ids []any, runID int64, now string) error {
	existing := make(map[string]int64, len(ids))
	err := b.query(ctx, `SELECT id, raw_hash FROM machines WHERE id IN `, 1, ids, func(rows *sql.Rows) error {
		var id string
		var h int64
		if err := rows.Scan(&id, &h); err != nil {
			return err
		}
		existing[id] = h
		return nil
	})
	if err != nil {
		return fmt.Errorf("look up machines: %w", err)
	}
	var same, replaced, upserts, ips, tags []any
	for _, id := range ids {
		m := &machines[index[id.(string)]]
		h := rawHash(m.Raw)
		old, found := existing[m.ID]
		if found && old == h {
			same = append(same, m.ID)
			continue
		}
		if found {
			replaced = append(replaced, m.ID)
		}
		upserts = append(upserts, machineRow(m, h, runID, now)...)
		for pos, ip := range m.IPAddresses {
			if isLoopback(ip) {
				continue // every machine has one: no use as a lookup key
			}
			ips = append(ips, m.ID, pos, ip.IPAddress, ip.MACAddress, ip.Type, ip.OperationalStatus)
		}
		for _, tag := range m.MachineTags {
			tags = append(tags, m.ID, tag)
		}
	}
	steps := []struct {
		what           string
		prefix, suffix string
		cols           int
		args           []any
	}{
		{"stamp unchanged machines", `UPDATE machines SET seen_run = ` + strconv.FormatInt(runID, 10) + `, synced_at = '` + now + `', retired_at = NULL WHERE id IN `, ``, 1, same},
		{"upsert machines", `INSERT INTO machines (` + machineInsertCols + `) VALUES `, ` ON CONFLICT (id) DO UPDATE SET ` + machineUpdateSet, strings.Count(machineInsertCols, ",") + 1, upserts},
		{"clear machine IPs", `DELETE FROM machine_ips WHERE machine_id IN `, ``, 1, replaced},
		{"clear machine tags", `DELETE FROM machine_tags WHERE machine_id IN `, ``, 1, replaced},
		{"insert machine IPs", `INSERT INTO machine_ips (machine_id, position, ip, mac, type, status) VALUES `, ``, 6, ips},
		{"insert machine tags", `INSERT OR IGNORE INTO machine_tags (machine_id, tag) VALUES `, ``, 2, tags},
	}
	for _, st := range steps {
		if err := b.exec(ctx, st.prefix, st.suffix, st.cols, st.args); err != nil {
			return fmt.Errorf("%s: %w", st.what, err)
		}
	}
	return nil
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
		WHERE machine_id IN (SELECT m.id FROM machines m`+tail+`) ORDER BY machine_id, position`, args...)
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
