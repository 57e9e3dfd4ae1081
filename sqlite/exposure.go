package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The exposure store: full loads into a twin table swapped in whole, delta
// changes applied in place, and the figures (per CVE, per product, totals)
// that queries and status read instead of counting millions of rows.
//
// Why it is fast enough for five million rows on a small machine: rows are
// a handful of integers (dimension keys) written with multi-row statements
// into a WITHOUT ROWID table in key order (device keys are handed out in
// the order devices first appear, so inserts append); the secondary indexes
// are built once, after the load, not maintained row by row; and nothing
// scans the rows afterwards except index-ordered aggregates.

const (
	vulnTable     = "machine_vulnerabilities"
	softwareTable = "machine_software"
	// rowsPerStatement bounds multi-row INSERTs of the row tables.
	vulnCols     = 10
	softwareCols = 8
)

// unixMilli stores a time; zero is 0.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// joinPaths packs disk and registry paths into one column; nil when both
// are empty.
func joinPaths(disk, reg []string) any {
	if len(disk) == 0 && len(reg) == 0 {
		return nil
	}
	return strings.Join(disk, "\x1f") + "\x1e" + strings.Join(reg, "\x1f")
}

func splitPaths(s sql.NullString) (disk, reg []string) {
	disk, reg = []string{}, []string{}
	if !s.Valid {
		return
	}
	d, r, _ := strings.Cut(s.String, "\x1e")
	if d != "" {
		disk = strings.Split(d, "\x1f")
	}
	if r != "" {
		reg = strings.Split(r, "\x1f")
	}
	return
}

func nullText(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// deviceAttrs are what the exports say of a device.
type deviceAttrs struct {
	name, platform, version, arch, group string
	groupID                              int64
}

type softwareID struct{ vendor, name, version string }

type updateID struct{ name, id, url string }

type cveAttrs struct {
	severity, exploit string
	cvss              float64
	hasCVSS           bool
}

// dims maps the exports' strings to dimension keys, creating keys as new
// values appear and queueing the dimension rows to write.
type dims struct {
	devices  map[string]int64 // lower-case device id -> key
	devIDs   map[int64]string
	devAttrs map[int64]deviceAttrs
	software map[softwareID]int64
	swByKey  map[int64]softwareID
	cves     map[string]int64 // upper-case id -> key
	cveIDs   map[int64]string
	cveAttr  map[int64]cveAttrs
	updates  map[updateID]int64
	eos      map[int64]int // version -> worst end-of-support rank seen in a load
	next     [4]int64      // the last key of: device, software, cve, update

	devWrites map[int64]bool // devices to insert or update
	cveWrites map[int64]bool
	swWrites  []any // new software_versions rows
	updWrites []any // new security_updates rows

	// The exports list a machine's rows together, and an install's: the
	// last device and version looked up are usually the next ones.
	lastDevice      string
	lastDeviceAttrs deviceAttrs
	lastDeviceKey   int64
	lastSoftware    softwareID
	lastSoftwareKey int64

	// Boxing every column value of millions of rows into interfaces for
	// database/sql is most of a load's garbage; values that repeat are
	// boxed once.
	boxed     [4][]any // per dimension, by key
	lastTimes [2]struct {
		v int64
		b any
	}
	lastDisk, lastReg []string
	lastPaths         any
}

// box returns dimension key k of slot as an interface, boxing it once.
func (d *dims) box(slot int, k int64) any {
	b := d.boxed[slot]
	if int(k) >= len(b) {
		b = append(b, make([]any, int(k)-len(b)+1024)...)
		d.boxed[slot] = b
	}
	if b[k] == nil {
		b[k] = k
	}
	return b[k]
}

// boxTime boxes a timestamp column, reusing the last one when it repeats
// (a machine's rows share their last-seen time).
func (d *dims) boxTime(i int, v int64) any {
	if l := &d.lastTimes[i]; l.b != nil && l.v == v {
		return l.b
	}
	d.lastTimes[i].v, d.lastTimes[i].b = v, v
	return d.lastTimes[i].b
}

// paths packs an install's paths, reusing the last row's when they repeat.
func (d *dims) paths(disk, reg []string) any {
	if d.lastPaths != nil && slices.Equal(disk, d.lastDisk) && slices.Equal(reg, d.lastReg) {
		return d.lastPaths
	}
	d.lastDisk, d.lastReg, d.lastPaths = disk, reg, joinPaths(disk, reg)
	return d.lastPaths
}

// loadDims reads every dimension into memory (small: one entry per
// device, product version, CVE and update).
func loadDims(ctx context.Context, tx *sql.Tx) (*dims, error) {
	d := &dims{devices: map[string]int64{}, devIDs: map[int64]string{}, devAttrs: map[int64]deviceAttrs{},
		software: map[softwareID]int64{}, swByKey: map[int64]softwareID{},
		cves: map[string]int64{}, cveIDs: map[int64]string{}, cveAttr: map[int64]cveAttrs{},
		updates: map[updateID]int64{}, eos: map[int64]int{}, devWrites: map[int64]bool{}, cveWrites: map[int64]bool{}}
	scan := func(q string, slot int, row func(*sql.Rows) (int64, error)) error {
		rows, err := tx.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			k, err := row(rows)
			if err != nil {
				return err
			}
			d.next[slot] = max(d.next[slot], k)
		}
		return rows.Err()
	}
	err := scan(`SELECT key, device_id, device_name, os_platform, os_version, os_architecture, rbac_group_name, rbac_group_id FROM tvm_devices`, 0, func(r *sql.Rows) (int64, error) {
		var k int64
		var id string
		var a deviceAttrs
		err := r.Scan(&k, &id, &a.name, &a.platform, &a.version, &a.arch, &a.group, &a.groupID)
		d.devices[id], d.devIDs[k], d.devAttrs[k] = k, id, a
		return k, err
	})
	if err == nil {
		err = scan(`SELECT key, vendor, name, version FROM software_versions`, 1, func(r *sql.Rows) (int64, error) {
			var k int64
			var s softwareID
			err := r.Scan(&k, &s.vendor, &s.name, &s.version)
			d.software[s], d.swByKey[k] = k, s
			return k, err
		})
	}
	if err == nil {
		err = scan(`SELECT key, id, export_severity, export_cvss, exploitability_level FROM cves`, 2, func(r *sql.Rows) (int64, error) {
			var k int64
			var id string
			var a cveAttrs
			var cvss sql.NullFloat64
			err := r.Scan(&k, &id, &a.severity, &cvss, &a.exploit)
			a.cvss, a.hasCVSS = cvss.Float64, cvss.Valid
			d.cves[id], d.cveIDs[k], d.cveAttr[k] = k, id, a
			return k, err
		})
	}
	if err == nil {
		err = scan(`SELECT key, name, update_id, url FROM security_updates`, 3, func(r *sql.Rows) (int64, error) {
			var k int64
			var u updateID
			err := r.Scan(&k, &u.name, &u.id, &u.url)
			d.updates[u] = k
			return k, err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("read dimensions: %w", err)
	}
	return d, nil
}

// device returns the key of a device, noting what the row says of it
// (a value the row leaves empty keeps the known one).
func (d *dims) device(id string, a deviceAttrs) int64 {
	if d.lastDeviceKey != 0 && id == d.lastDevice && a == d.lastDeviceAttrs {
		return d.lastDeviceKey
	}
	k := d.deviceKey(id, a)
	d.lastDevice, d.lastDeviceAttrs, d.lastDeviceKey = id, a, k
	return k
}

func (d *dims) deviceKey(id string, a deviceAttrs) int64 {
	id = strings.ToLower(id)
	k, ok := d.devices[id]
	if !ok {
		d.next[0]++
		k = d.next[0]
		d.devices[id], d.devIDs[k], d.devAttrs[k] = k, id, a
		d.devWrites[k] = true
		return k
	}
	old := d.devAttrs[k]
	if a == old {
		return k
	}
	if a.name == "" {
		a.name = old.name
	}
	if a.platform == "" {
		a.platform = old.platform
	}
	if a.version == "" {
		a.version = old.version
	}
	if a.arch == "" {
		a.arch = old.arch
	}
	if a.group == "" {
		a.group, a.groupID = old.group, old.groupID
	}
	if a != old {
		d.devAttrs[k] = a
		d.devWrites[k] = true
	}
	return k
}

func (d *dims) softwareKey(s softwareID) int64 {
	if d.lastSoftwareKey != 0 && s == d.lastSoftware {
		return d.lastSoftwareKey
	}
	k, ok := d.software[s]
	d.lastSoftware = s
	defer func() { d.lastSoftwareKey = k }()
	if !ok {
		d.next[1]++
		k = d.next[1]
		d.software[s], d.swByKey[k] = k, s
		d.swWrites = append(d.swWrites, k, s.vendor, s.name, s.version)
	}
	return k
}

// cve returns the key of a CVE (0 for none), noting what the row says of it.
func (d *dims) cve(id, severity, exploit string, cvss *float64) int64 {
	if id == "" {
		return 0
	}
	id = strings.ToUpper(id)
	a := cveAttrs{severity: severity, exploit: exploit}
	if cvss != nil {
		a.cvss, a.hasCVSS = *cvss, true
	}
	k, ok := d.cves[id]
	if !ok {
		d.next[2]++
		k = d.next[2]
		d.cves[id], d.cveIDs[k] = k, id
	} else if d.cveAttr[k] == a {
		return k
	}
	d.cveAttr[k] = a
	d.cveWrites[k] = true
	return k
}

func (d *dims) update(u updateID) int64 {
	if u == (updateID{}) {
		return 0
	}
	k, ok := d.updates[u]
	if !ok {
		d.next[3]++
		k = d.next[3]
		d.updates[u] = k
		d.updWrites = append(d.updWrites, k, u.name, u.id, u.url)
	}
	return k
}

// flush writes the dimension rows queued since the last flush.
func (d *dims) flush(ctx context.Context, b *batcher) error {
	var devs, cves []any
	for _, k := range sortedKeys(d.devWrites) {
		a := d.devAttrs[k]
		devs = append(devs, k, d.devIDs[k], a.name, a.platform, a.version, a.arch, a.group, a.groupID)
	}
	for _, k := range sortedKeys(d.cveWrites) {
		a := d.cveAttr[k]
		var cvss any
		if a.hasCVSS {
			cvss = a.cvss
		}
		cves = append(cves, k, d.cveIDs[k], a.severity, cvss, a.exploit)
	}
	steps := []struct {
		what, prefix, suffix string
		cols                 int
		args                 []any
	}{
		{"devices", `INSERT INTO tvm_devices (key, device_id, device_name, os_platform, os_version, os_architecture, rbac_group_name, rbac_group_id) VALUES `,
			` ON CONFLICT (key) DO UPDATE SET device_name = excluded.device_name, os_platform = excluded.os_platform, os_version = excluded.os_version,
			os_architecture = excluded.os_architecture, rbac_group_name = excluded.rbac_group_name, rbac_group_id = excluded.rbac_group_id`, 8, devs},
		{"software versions", `INSERT INTO software_versions (key, vendor, name, version) VALUES `, ``, 4, d.swWrites},
		{"security updates", `INSERT INTO security_updates (key, name, update_id, url) VALUES `, ``, 4, d.updWrites},
		{"CVEs", `INSERT INTO cves (key, id, export_severity, export_cvss, exploitability_level) VALUES `,
			` ON CONFLICT (key) DO UPDATE SET export_severity = excluded.export_severity, export_cvss = excluded.export_cvss, exploitability_level = excluded.exploitability_level`, 5, cves},
	}
	for _, st := range steps {
		if err := b.exec(ctx, st.prefix, st.suffix, st.cols, st.args); err != nil {
			return fmt.Errorf("write %s: %w", st.what, err)
		}
	}
	clear(d.devWrites)
	clear(d.cveWrites)
	d.swWrites, d.updWrites = d.swWrites[:0], d.updWrites[:0]
	return nil
}

func sortedKeys(m map[int64]bool) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
