package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
)

// rowLoad fills the twin of a row table and swaps it in at Commit. It
// keeps every row's dimension keys, packed in a word, so that the figures
// the store keeps (per CVE, per product, totals) are computed in one pass
// over a sorted slice in memory rather than by SQL over millions of rows.
type rowLoad[T any] struct {
	db      *DB
	table   string
	cols    int
	dims    *dims
	encode  func(d *dims, r *T, args []any) ([]any, uint64, error)
	figures func(ctx context.Context, tx *sql.Tx, d *dims, keys []uint64) error
	keys    keyChunks
	done    bool
}

// keyChunks holds row keys in fixed chunks, so that millions of them never
// need one growing slice (and its copy) at once.
type keyChunks [][]uint64

const keyChunk = 1 << 16

func (k *keyChunks) add(keys []uint64) {
	for len(keys) > 0 {
		if n := len(*k); n == 0 || len((*k)[n-1]) == keyChunk {
			*k = append(*k, make([]uint64, 0, keyChunk))
		}
		last := &(*k)[len(*k)-1]
		m := min(keyChunk-len(*last), len(keys))
		*last = append(*last, keys[:m]...)
		keys = keys[m:]
	}
}

// sorted returns the distinct keys in order, releasing the chunks as it
// copies them.
func (k *keyChunks) sorted() []uint64 {
	n := 0
	for _, c := range *k {
		n += len(c)
	}
	out := make([]uint64, 0, n)
	for i := range *k {
		out = append(out, (*k)[i]...)
		(*k)[i] = nil
	}
	*k = nil
	slices.Sort(out)
	return slices.Compact(out)
}

func next(table string) string { return table + "_next" }

// beginLoad creates the empty twin of table (dropping a leftover one: a
// load the process did not live to finish) and reads the dimensions.
func beginLoad[T any](ctx context.Context, db *DB, table string, cols int, encode func(*dims, *T, []any) ([]any, uint64, error),
	figures func(context.Context, *sql.Tx, *dims, []uint64) error) (*rowLoad[T], error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var ddl string
	if err := tx.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?`, table).Scan(&ddl); err != nil {
		return nil, fmt.Errorf("schema of %s: %w", table, err)
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+next(table)); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, renameTable(ddl, table, next(table))); err != nil {
		return nil, fmt.Errorf("create %s: %w", next(table), err)
	}
	d, err := loadDims(ctx, tx)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return &rowLoad[T]{db: db, table: table, cols: cols, dims: d, encode: encode, figures: figures}, nil
}

// renameTable rewrites a CREATE TABLE statement of table to name another.
func renameTable(ddl, from, to string) string {
	re := regexp.MustCompile(`\b` + regexp.QuoteMeta(from) + `\b`)
	return re.ReplaceAllString(ddl, to)
}

// Add stores rows in the twin, in one transaction.
func (l *rowLoad[T]) Add(ctx context.Context, rows []T) error {
	if l.done {
		return errors.New("the load is finished")
	}
	args := make([]any, 0, len(rows)*l.cols)
	keys := make([]uint64, 0, len(rows))
	for i := range rows {
		var k uint64
		var err error
		if args, k, err = l.encode(l.dims, &rows[i], args); err != nil {
			return err
		}
		keys = append(keys, k)
	}
	tx, err := l.db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	b := newBatcher(tx)
	defer b.close()
	if err := l.dims.flush(ctx, b); err != nil {
		return err
	}
	if err := b.exec(ctx, `INSERT OR REPLACE INTO `+next(l.table)+` VALUES `, ``, l.cols, args); err != nil {
		return fmt.Errorf("store %d rows: %w", len(rows), err)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	l.keys.add(keys)
	return nil
}

// Commit swaps the twin in, builds the indexes the live table has, and
// writes the figures, in one transaction: readers see the old rows until
// it commits and the new ones after, never a mix.
func (l *rowLoad[T]) Commit(ctx context.Context) (int, error) {
	if l.done {
		return 0, errors.New("the load is finished")
	}
	// A row handed twice (a file downloaded again) is one row.
	keys := l.keys.sorted()
	// Index builds sort millions of entries: let the sorter spill to
	// temporary files rather than hold them all in this process's memory.
	// (The writer is one connection; the pragma cannot change inside a
	// transaction.)
	if _, err := l.db.write.ExecContext(ctx, `PRAGMA temp_store = FILE`); err != nil {
		return 0, err
	}
	defer l.db.write.ExecContext(context.WithoutCancel(ctx), `PRAGMA temp_store = MEMORY`)
	tx, err := l.db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var indexes []string
	rows, err := tx.QueryContext(ctx, `SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name`, l.table)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return 0, err
		}
		indexes = append(indexes, s)
	}
	rows.Close()
	for _, q := range append([]string{
		`DROP TABLE ` + l.table,
		`ALTER TABLE ` + next(l.table) + ` RENAME TO ` + l.table,
	}, indexes...) {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return 0, fmt.Errorf("swap in %s: %s: %w", l.table, firstLine(q), err)
		}
	}
	if err := l.figures(ctx, tx, l.dims, keys); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	l.done = true
	return len(keys), nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// Abort drops the twin; the live rows are untouched.
func (l *rowLoad[T]) Abort(ctx context.Context) error {
	if l.done {
		return nil
	}
	l.done, l.keys = true, nil // the twin goes; so do its keys
	_, err := l.db.write.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS `+next(l.table))
	return err
}

// Rows are identified in memory by their keys packed in a word: 24 bits of
// device, 20 of product version, 20 of CVE (16 million devices, a million
// versions and a million CVEs: a hundred times a large tenant).
const (
	devBits = 24
	swBits  = 20
	cveBits = 20
)

func packKey(dk, sk, ck int64) (uint64, error) {
	if dk >= 1<<devBits || sk >= 1<<swBits || ck >= 1<<cveBits {
		return 0, fmt.Errorf("more devices (%d), product versions (%d) or CVEs (%d) than the store supports", dk, sk, ck)
	}
	return uint64(dk)<<(swBits+cveBits) | uint64(sk)<<cveBits | uint64(ck), nil
}

func unpackKey(k uint64) (dk, sk, ck int64) {
	return int64(k >> (swBits + cveBits)), int64(k >> cveBits & (1<<swBits - 1)), int64(k & (1<<cveBits - 1))
}

// derivedRowID reports whether id is the usual export id of its row,
// deviceId_vendor_name_version_cveId, which then need not be stored.
func derivedRowID(r *mdebridge.MachineVulnerability) bool {
	id := r.ID
	for i, part := range [...]string{r.DeviceID, r.SoftwareVendor, r.SoftwareName, r.SoftwareVersion, r.CVEID} {
		if !strings.HasPrefix(id, part) {
			return false
		}
		id = id[len(part):]
		if i < 4 {
			if !strings.HasPrefix(id, "_") {
				return false
			}
			id = id[1:]
		}
	}
	return id == ""
}

func vulnFlags(v *bool) int64 {
	switch {
	case v == nil:
		return 0
	case *v:
		return 3
	}
	return 1
}

// withExtra adds a member to a JSON object (or starts one).
func withExtra(obj []byte, key, value string) []byte {
	v, _ := json.Marshal(value)
	k, _ := json.Marshal(key)
	if len(obj) < 2 {
		return append(append(append(append([]byte("{"), k...), ':'), v...), '}')
	}
	out := append([]byte{}, obj[:len(obj)-1]...)
	if strings.TrimSpace(string(out)) != "{" {
		out = append(out, ',')
	}
	return append(append(append(append(out, k...), ':'), v...), '}')
}

// appendVulnRow appends the column values of one vulnerability row.
func appendVulnRow(d *dims, r *mdebridge.MachineVulnerability, args []any) ([]any, uint64, error) {
	dk := d.device(r.DeviceID, deviceAttrs{r.DeviceName, r.OSPlatform, r.OSVersion, r.OSArchitecture, r.RBACGroupName, r.RBACGroupID})
	sk := d.softwareKey(softwareID{r.SoftwareVendor, r.SoftwareName, r.SoftwareVersion})
	ck := d.cve(r.CVEID, r.Severity, r.ExploitabilityLevel, r.CVSSScore)
	uk := d.update(updateID{r.RecommendedSecurityUpdate, r.RecommendedSecurityUpdateID, r.RecommendedSecurityUpdateURL})
	key, err := packKey(dk, sk, ck)
	if err != nil {
		return args, 0, err
	}
	var rowID any
	if !derivedRowID(r) {
		rowID = r.ID
	}
	extra := r.Extra
	if ref := r.RecommendationReference; ref != "" && ref != "va-_-"+r.SoftwareVendor+"-_-"+r.SoftwareName {
		extra = withExtra(extra, "recommendationReference", ref) // kept: it is not the usual one
	}
	return append(args, d.box(0, dk), d.box(1, sk), d.box(2, ck), d.boxTime(0, unixMilli(r.FirstSeen)), d.boxTime(1, unixMilli(r.LastSeen)),
		d.box(3, uk), vulnFlags(r.SecurityUpdateAvailable), d.paths(r.DiskPaths, r.RegistryPaths), rowID, nullText(extra)), key, nil
}

func appendSoftwareRow(d *dims, r *mdebridge.SoftwareInstall, args []any) ([]any, uint64, error) {
	dk := d.device(r.DeviceID, deviceAttrs{name: r.DeviceName, platform: r.OSPlatform, group: r.RBACGroupName})
	sk := d.softwareKey(softwareID{r.SoftwareVendor, r.SoftwareName, r.SoftwareVersion})
	if r := eosRanks[r.EndOfSupportStatus]; r > d.eos[sk] {
		d.eos[sk] = r
	}
	key, err := packKey(dk, sk, 0)
	if err != nil {
		return args, 0, err
	}
	return append(args, d.box(0, dk), d.box(1, sk), d.boxTime(0, unixMilli(r.FirstSeen)), int64(r.NumberOfWeaknesses), r.EndOfSupportStatus,
		d.boxTime(1, unixMilli(r.EndOfSupportDate)), d.paths(r.DiskPaths, r.RegistryPaths), nullText(r.Extra)), key, nil
}

// eosRanks orders end-of-support statuses, worst last.
var eosRanks = map[string]int{"Upcoming EOS Version": 1, "Upcoming EOS Software": 2, "EOS Version": 3, "EOS Software": 4}

func eosName(rank int) string {
	for n, r := range eosRanks {
		if r == rank {
			return n
		}
	}
	return ""
}

// BeginVulnerabilityLoad starts replacing every vulnerability row.
func (db *DB) BeginVulnerabilityLoad(ctx context.Context, runID int64) (mdebridge.RowLoad[mdebridge.MachineVulnerability], error) {
	return beginLoad(ctx, db, vulnTable, vulnCols, appendVulnRow, writeVulnFigures)
}

// BeginSoftwareLoad starts replacing the software inventory.
func (db *DB) BeginSoftwareLoad(ctx context.Context, runID int64) (mdebridge.RowLoad[mdebridge.SoftwareInstall], error) {
	return beginLoad(ctx, db, softwareTable, softwareCols, appendSoftwareRow, writeSoftwareFigures)
}

// productOf names a version's product.
func (d *dims) productOf(sk int64) productID {
	s := d.swByKey[sk]
	return productID{s.vendor, s.name}
}

type productID struct{ vendor, name string }

// writeVulnFigures computes, from the sorted keys of every vulnerability
// row, the figures per CVE, per (version, CVE), per version and per
// product, and the totals, and writes them.
func writeVulnFigures(ctx context.Context, tx *sql.Tx, d *dims, keys []uint64) error {
	cveMachines := map[int64]int{}
	pairs := map[[2]int64]int{} // (version, CVE) -> machines
	versionMachines := map[int64]int{}
	productMachines := map[productID]int{}
	var rows, noCVE, vulnerable int
	cves := map[int64]bool{}
	products := map[productID]bool{}
	for i := 0; i < len(keys); {
		dk, _, _ := unpackKey(keys[i])
		clear(cves)
		clear(products)
		lastVersion := int64(-1)
		for ; i < len(keys); i++ {
			k, sk, ck := unpackKey(keys[i])
			if k != dk {
				break
			}
			if ck == 0 {
				noCVE++
				continue
			}
			rows++
			pairs[[2]int64{sk, ck}]++
			cves[ck] = true
			if sk != lastVersion { // keys are sorted: a version's rows are together
				versionMachines[sk]++
				lastVersion = sk
				products[d.productOf(sk)] = true
			}
		}
		if len(cves) > 0 {
			vulnerable++
		}
		for c := range cves {
			cveMachines[c]++
		}
		for p := range products {
			productMachines[p]++
		}
	}
	// Per product: its CVEs (weaknesses) and whether one has an exploit.
	exploit, err := exploitedCVEs(ctx, tx, d)
	if err != nil {
		return err
	}
	versionWeak := map[int64]int{}
	productCVEs := map[productID]map[int64]bool{}
	cveProducts := map[int64]map[string]bool{}
	var pairArgs []any
	for pc, n := range pairs {
		sk, ck := pc[0], pc[1]
		versionWeak[sk]++
		p := d.productOf(sk)
		if productCVEs[p] == nil {
			productCVEs[p] = map[int64]bool{}
		}
		productCVEs[p][ck] = true
		if cveProducts[ck] == nil {
			cveProducts[ck] = map[string]bool{}
		}
		cveProducts[ck][p.vendor+"-_-"+p.name] = true
		pairArgs = append(pairArgs, sk, ck, n)
	}
	var cveArgs []any
	for ck, n := range cveMachines {
		names := make([]string, 0, len(cveProducts[ck]))
		for p := range cveProducts[ck] {
			names = append(names, p)
		}
		slices.Sort(names)
		cveArgs = append(cveArgs, ck, n, strings.Join(names, "\x1f"))
	}
	var versionArgs []any
	for sk, n := range versionMachines {
		versionArgs = append(versionArgs, sk, n, versionWeak[sk])
	}
	var productArgs []any
	for p, n := range productMachines {
		anyExploit := false
		for c := range productCVEs[p] {
			anyExploit = anyExploit || exploit[c]
		}
		productArgs = append(productArgs, p.vendor, p.name, n, len(productCVEs[p]), boolInt(anyExploit))
	}
	b := newBatcher(tx)
	defer b.close()
	err = execAll(ctx, tx, "reset the figures",
		`UPDATE cves SET exposed_machines = 0, products = '' WHERE exposed_machines != 0 OR products != ''`,
		`UPDATE software_versions SET exposed_machines = 0, weaknesses = 0 WHERE exposed_machines != 0 OR weaknesses != 0`,
		`UPDATE software_products SET exposed_machines = 0, weaknesses = 0, public_exploit = 0`,
		`DELETE FROM cve_software`)
	if err != nil {
		return err
	}
	steps := []struct {
		what, prefix, suffix string
		cols                 int
		args                 []any
	}{
		{"CVE figures", `UPDATE cves SET exposed_machines = v.column2, products = v.column3 FROM (VALUES `, `) AS v WHERE cves.key = v.column1`, 3, cveArgs},
		{"CVE versions", `INSERT INTO cve_software (software_key, cve_key, machines) VALUES `, ``, 3, pairArgs},
		{"version figures", `UPDATE software_versions SET exposed_machines = v.column2, weaknesses = v.column3 FROM (VALUES `, `) AS v WHERE software_versions.key = v.column1`, 3, versionArgs},
		{"product figures", `INSERT INTO software_products (vendor, name, exposed_machines, weaknesses, public_exploit) VALUES `,
			` ON CONFLICT (vendor, name) DO UPDATE SET exposed_machines = excluded.exposed_machines, weaknesses = excluded.weaknesses, public_exploit = excluded.public_exploit`, 5, productArgs},
	}
	for _, st := range steps {
		if err := b.exec(ctx, st.prefix, st.suffix, st.cols, st.args); err != nil {
			return fmt.Errorf("write %s: %w", st.what, err)
		}
	}
	return writeTotals(ctx, tx, map[string]int{
		"machine_vulnerabilities": rows, "machine_vulnerabilities_without_cve": noCVE, "vulnerable_machines": vulnerable, "cves_exposed": len(cveMachines),
	})
}

// exploitedCVEs are the CVEs with a public exploit, by the catalogue or
// the exports.
func exploitedCVEs(ctx context.Context, tx *sql.Tx, d *dims) (map[int64]bool, error) {
	out := map[int64]bool{}
	for k, a := range d.cveAttr {
		if a.exploit == "ExploitIsPublic" || a.exploit == "ExploitIsVerified" || a.exploit == "ExploitIsInKit" {
			out[k] = true
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT key FROM cves WHERE public_exploit = 1`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k int64
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		out[k] = true
	}
	return out, rows.Err()
}

// writeSoftwareFigures computes the inventory's figures from the sorted
// keys of its rows and writes them.
func writeSoftwareFigures(ctx context.Context, tx *sql.Tx, d *dims, keys []uint64) error {
	installations := map[int64]int{}
	productMachines := map[productID]int{}
	productVersions := map[productID]int{}
	productEOS := map[productID]int{}
	products := map[productID]bool{}
	for i := 0; i < len(keys); {
		dk, _, _ := unpackKey(keys[i])
		clear(products)
		for ; i < len(keys); i++ {
			k, sk, _ := unpackKey(keys[i])
			if k != dk {
				break
			}
			if installations[sk] == 0 {
				p := d.productOf(sk)
				productVersions[p]++
				productEOS[p] = max(productEOS[p], d.eos[sk])
			}
			installations[sk]++
			products[d.productOf(sk)] = true
		}
		for p := range products {
			productMachines[p]++
		}
	}
	var versionArgs, productArgs []any
	for sk, n := range installations {
		versionArgs = append(versionArgs, sk, n)
	}
	for p, n := range productMachines {
		productArgs = append(productArgs, p.vendor, p.name, n, productVersions[p], eosName(productEOS[p]))
	}
	b := newBatcher(tx)
	defer b.close()
	err := execAll(ctx, tx, "reset the inventory figures",
		`UPDATE software_versions SET installations = 0 WHERE installations != 0`,
		`UPDATE software_products SET installed_machines = 0, versions = 0, eos_status = ''`)
	if err != nil {
		return err
	}
	if err := b.exec(ctx, `UPDATE software_versions SET installations = v.column2 FROM (VALUES `, `) AS v WHERE software_versions.key = v.column1`, 2, versionArgs); err != nil {
		return fmt.Errorf("write version figures: %w", err)
	}
	if err := b.exec(ctx, `INSERT INTO software_products (vendor, name, installed_machines, versions, eos_status) VALUES `,
		` ON CONFLICT (vendor, name) DO UPDATE SET installed_machines = excluded.installed_machines, versions = excluded.versions, eos_status = excluded.eos_status`,
		5, productArgs); err != nil {
		return fmt.Errorf("write product figures: %w", err)
	}
	return writeTotals(ctx, tx, map[string]int{"machine_software": len(keys)})
}

// writeTotals records totals, drops products nothing refers to any more,
// and recounts the products.
func writeTotals(ctx context.Context, tx *sql.Tx, totals map[string]int) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM software_products WHERE installed_machines = 0 AND exposed_machines = 0`); err != nil {
		return err
	}
	var products int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM software_products`).Scan(&products); err != nil {
		return err
	}
	totals["software_products"] = products
	for name, v := range totals {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO exposure_counts (name, value) VALUES (?, ?)`, name, v); err != nil {
			return err
		}
	}
	return nil
}

// execAll runs statements in order, naming the one that fails.
func execAll(ctx context.Context, tx *sql.Tx, what string, stmts ...string) error {
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %s: %w", what, strings.TrimSpace(firstLine(q)), err)
		}
	}
	return nil
}

// ApplyVulnerabilityChanges applies delta rows in place and keeps the
// figures exact by asking, for every device, version, product and CVE the
// changes touch, whether the device had it before and has it after: point
// lookups on the primary key, however big the table.
func (db *DB) ApplyVulnerabilityChanges(ctx context.Context, runID int64, changes []mdebridge.MachineVulnerability) (mdebridge.ChangeCounts, error) {
	var counts mdebridge.ChangeCounts
	if len(changes) == 0 {
		return counts, nil
	}
	// In time order, so that a row found and then fixed in the window ends
	// fixed whatever order the service listed the changes in.
	order := make([]int, len(changes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return changes[a].EventTimestamp.Compare(changes[b].EventTimestamp) })
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return counts, err
	}
	defer tx.Rollback()
	d, err := loadDims(ctx, tx)
	if err != nil {
		return counts, err
	}
	final := map[uint64][]any{} // the row's values; nil: removed
	var keys []uint64
	for _, i := range order {
		r := &changes[i]
		args, k, err := appendVulnRow(d, r, nil)
		if err != nil {
			return counts, err
		}
		if _, seen := final[k]; !seen {
			keys = append(keys, k)
		}
		switch strings.ToLower(r.Status) {
		case "fixed":
			final[k] = nil
		case "new", "updated":
			final[k] = args
		default:
			return counts, fmt.Errorf("change %d: unknown status %q (want New, Fixed or Updated)", i+1, r.Status)
		}
	}
	b := newBatcher(tx)
	defer b.close()
	if err := d.flush(ctx, b); err != nil {
		return counts, err
	}
	w, err := newWitness(ctx, tx, d, keys)
	if err != nil {
		return counts, err
	}
	defer w.close()
	before, err := w.look(ctx)
	if err != nil {
		return counts, err
	}
	var upserts, deletes []any
	rowsDelta, noCVEDelta := 0, 0
	pairs := map[[2]int64]int{}
	for _, k := range keys {
		had, err := w.row(ctx, k)
		if err != nil {
			return counts, err
		}
		dk, sk, ck := unpackKey(k)
		step := 0
		switch args := final[k]; {
		case args == nil && had:
			counts.Removed++
			step = -1
			deletes = append(deletes, dk, sk, ck)
		case args != nil && had:
			counts.Updated++
			upserts = append(upserts, args...)
		case args != nil:
			counts.Added++
			step = 1
			upserts = append(upserts, args...)
		}
		if ck == 0 {
			noCVEDelta += step
		} else if step != 0 {
			rowsDelta += step
			pairs[[2]int64{sk, ck}] += step
		}
	}
	if err := b.exec(ctx, `INSERT OR REPLACE INTO machine_vulnerabilities VALUES `, ``, vulnCols, upserts); err != nil {
		return counts, fmt.Errorf("store changes: %w", err)
	}
	if err := b.exec(ctx, `DELETE FROM machine_vulnerabilities WHERE (device_key, software_key, cve_key) IN (VALUES `, `)`, 3, deletes); err != nil {
		return counts, fmt.Errorf("remove fixed rows: %w", err)
	}
	after, err := w.look(ctx)
	if err != nil {
		return counts, err
	}
	if err := adjustFigures(ctx, tx, b, d, before, after, pairs, rowsDelta, noCVEDelta); err != nil {
		return counts, err
	}
	return counts, tx.Commit()
}

// witness answers "does this device have it" for what a set of changes
// touches.
type witness struct {
	d                             *dims
	keys                          []uint64
	rowQ, devQ, verQ, prodQ, cveQ *sql.Stmt
}

func newWitness(ctx context.Context, tx *sql.Tx, d *dims, keys []uint64) (*witness, error) {
	w := &witness{d: d, keys: keys}
	for _, q := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&w.rowQ, `SELECT EXISTS (SELECT 1 FROM machine_vulnerabilities WHERE device_key = ? AND software_key = ? AND cve_key = ?)`},
		{&w.devQ, `SELECT EXISTS (SELECT 1 FROM machine_vulnerabilities WHERE device_key = ? AND cve_key > 0)`},
		{&w.verQ, `SELECT EXISTS (SELECT 1 FROM machine_vulnerabilities WHERE device_key = ? AND software_key = ? AND cve_key > 0)`},
		{&w.prodQ, `SELECT EXISTS (SELECT 1 FROM machine_vulnerabilities WHERE device_key = ? AND cve_key > 0
			AND software_key IN (SELECT key FROM software_versions WHERE vendor = ? AND name = ?))`},
		{&w.cveQ, `SELECT EXISTS (SELECT 1 FROM machine_vulnerabilities WHERE device_key = ? AND cve_key = ?)`},
	} {
		s, err := tx.PrepareContext(ctx, q.sql)
		if err != nil {
			w.close()
			return nil, err
		}
		*q.dst = s
	}
	return w, nil
}

func (w *witness) close() {
	for _, s := range []*sql.Stmt{w.rowQ, w.devQ, w.verQ, w.prodQ, w.cveQ} {
		if s != nil {
			s.Close()
		}
	}
}

func (w *witness) row(ctx context.Context, k uint64) (bool, error) {
	dk, sk, ck := unpackKey(k)
	var has bool
	err := w.rowQ.QueryRowContext(ctx, dk, sk, ck).Scan(&has)
	return has, err
}

// presence is what the touched devices had at one moment.
type presence struct {
	device  map[int64]bool
	version map[[2]int64]bool // (device, version)
	product map[struct {
		dk int64
		p  productID
	}]bool
	cve map[[2]int64]bool // (device, CVE)
}

func (w *witness) look(ctx context.Context) (*presence, error) {
	p := &presence{device: map[int64]bool{}, version: map[[2]int64]bool{}, cve: map[[2]int64]bool{},
		product: map[struct {
			dk int64
			p  productID
		}]bool{}}
	ask := func(s *sql.Stmt, args ...any) (bool, error) {
		var has bool
		err := s.QueryRowContext(ctx, args...).Scan(&has)
		return has, err
	}
	for _, k := range w.keys {
		dk, sk, ck := unpackKey(k)
		if ck == 0 {
			continue
		}
		var err error
		if _, done := p.device[dk]; !done {
			if p.device[dk], err = ask(w.devQ, dk); err != nil {
				return nil, err
			}
		}
		if _, done := p.version[[2]int64{dk, sk}]; !done {
			if p.version[[2]int64{dk, sk}], err = ask(w.verQ, dk, sk); err != nil {
				return nil, err
			}
		}
		pk := struct {
			dk int64
			p  productID
		}{dk, w.d.productOf(sk)}
		if _, done := p.product[pk]; !done {
			if p.product[pk], err = ask(w.prodQ, dk, pk.p.vendor, pk.p.name); err != nil {
				return nil, err
			}
		}
		if _, done := p.cve[[2]int64{dk, ck}]; !done {
			if p.cve[[2]int64{dk, ck}], err = ask(w.cveQ, dk, ck); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

func boolDelta(before, after bool) int {
	switch {
	case after && !before:
		return 1
	case before && !after:
		return -1
	}
	return 0
}

// adjustFigures applies to the figures what the changes did.
func adjustFigures(ctx context.Context, tx *sql.Tx, b *batcher, d *dims, before, after *presence, pairs map[[2]int64]int, rowsDelta, noCVEDelta int) error {
	vulnerable := 0
	for dk, had := range before.device {
		vulnerable += boolDelta(had, after.device[dk])
	}
	cveDelta, versionDelta, productDelta := map[int64]int{}, map[int64]int{}, map[productID]int{}
	for k, had := range before.cve {
		cveDelta[k[1]] += boolDelta(had, after.cve[k])
	}
	for k, had := range before.version {
		versionDelta[k[1]] += boolDelta(had, after.version[k])
	}
	for k, had := range before.product {
		productDelta[k.p] += boolDelta(had, after.product[k])
	}
	var cveArgs, pairArgs, versionArgs, productArgs []any
	touchedVersions, touchedProducts := map[int64]bool{}, map[productID]bool{}
	for ck, n := range cveDelta {
		cveArgs = append(cveArgs, ck, n)
	}
	for pc, n := range pairs {
		pairArgs = append(pairArgs, pc[0], pc[1], n)
		touchedVersions[pc[0]] = true
		touchedProducts[d.productOf(pc[0])] = true
	}
	for sk, n := range versionDelta {
		versionArgs = append(versionArgs, sk, n)
		touchedVersions[sk] = true
	}
	for p, n := range productDelta {
		productArgs = append(productArgs, p.vendor, p.name, n)
		touchedProducts[p] = true
	}
	steps := []struct {
		what, prefix, suffix string
		cols                 int
		args                 []any
	}{
		{"CVE figures", `UPDATE cves SET exposed_machines = exposed_machines + v.column2 FROM (VALUES `, `) AS v WHERE cves.key = v.column1`, 2, cveArgs},
		{"CVE versions", `INSERT INTO cve_software (software_key, cve_key, machines) VALUES `,
			` ON CONFLICT (software_key, cve_key) DO UPDATE SET machines = machines + excluded.machines`, 3, pairArgs},
		{"version figures", `UPDATE software_versions SET exposed_machines = exposed_machines + v.column2 FROM (VALUES `, `) AS v WHERE software_versions.key = v.column1`, 2, versionArgs},
		{"product figures", `INSERT INTO software_products (vendor, name, exposed_machines) VALUES `,
			` ON CONFLICT (vendor, name) DO UPDATE SET exposed_machines = exposed_machines + excluded.exposed_machines`, 3, productArgs},
	}
	for _, st := range steps {
		if err := b.exec(ctx, st.prefix, st.suffix, st.cols, st.args); err != nil {
			return fmt.Errorf("adjust %s: %w", st.what, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM cve_software WHERE machines <= 0`); err != nil {
		return err
	}
	// What derives from the (version, CVE) pairs, for what they touched.
	for sk := range touchedVersions {
		if _, err := tx.ExecContext(ctx, `UPDATE software_versions SET weaknesses = (SELECT count(*) FROM cve_software WHERE software_key = ?) WHERE key = ?`, sk, sk); err != nil {
			return err
		}
	}
	for p := range touchedProducts {
		if _, err := tx.ExecContext(ctx, `UPDATE software_products SET
			weaknesses = (SELECT count(DISTINCT x.cve_key) FROM cve_software x JOIN software_versions s ON s.key = x.software_key WHERE s.vendor = ?1 AND s.name = ?2),
			public_exploit = coalesce((SELECT max(c.public_exploit OR c.exploitability_level IN ('ExploitIsPublic', 'ExploitIsVerified', 'ExploitIsInKit'))
				FROM cve_software x JOIN software_versions s ON s.key = x.software_key JOIN cves c ON c.key = x.cve_key WHERE s.vendor = ?1 AND s.name = ?2), 0)
			WHERE vendor = ?1 AND name = ?2`, p.vendor, p.name); err != nil {
			return err
		}
	}
	for ck := range cveDelta {
		if _, err := tx.ExecContext(ctx, `UPDATE cves SET products = coalesce((SELECT group_concat(p, char(31)) FROM (
			SELECT DISTINCT s.vendor || '-_-' || s.name AS p FROM cve_software x JOIN software_versions s ON s.key = x.software_key WHERE x.cve_key = ?1 ORDER BY 1)), '')
			WHERE key = ?1`, ck); err != nil {
			return err
		}
	}
	for _, st := range []struct {
		name  string
		delta int
	}{{"machine_vulnerabilities", rowsDelta}, {"machine_vulnerabilities_without_cve", noCVEDelta}, {"vulnerable_machines", vulnerable}} {
		if _, err := tx.ExecContext(ctx, `INSERT INTO exposure_counts (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = value + ?2`, st.name, st.delta); err != nil {
			return err
		}
	}
	var exposed int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM cves WHERE exposed_machines > 0`).Scan(&exposed); err != nil {
		return err
	}
	return writeTotals(ctx, tx, map[string]int{"cves_exposed": exposed})
}

// UpsertVulnerabilities stores catalogue entries.
func (db *DB) UpsertVulnerabilities(ctx context.Context, runID int64, vs []mdebridge.Vulnerability) error {
	if len(vs) == 0 {
		return nil
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	b := newBatcher(tx)
	defer b.close()
	args := make([]any, 0, len(vs)*9)
	for i := range vs {
		v := &vs[i]
		if len(v.Raw) == 0 {
			return fmt.Errorf("vulnerability %s has no raw JSON", v.ID)
		}
		public := v.PublicExploit || v.ExploitVerified || v.ExploitInKit
		args = append(args, strings.ToUpper(v.ID), runID, v.Severity, v.CVSSV3, fmtTime(v.PublishedOn), fmtTime(v.UpdatedOn), boolInt(public), string(v.Raw), 1)
	}
	if err := b.exec(ctx, `INSERT INTO cves (id, seen_run, severity, cvss_v3, published_on, updated_on, public_exploit, raw, in_catalogue) VALUES `,
		` ON CONFLICT (id) DO UPDATE SET seen_run = excluded.seen_run, severity = excluded.severity, cvss_v3 = excluded.cvss_v3,
		published_on = excluded.published_on, updated_on = excluded.updated_on, public_exploit = excluded.public_exploit, raw = excluded.raw, in_catalogue = 1`,
		9, args); err != nil {
		return fmt.Errorf("store vulnerabilities: %w", err)
	}
	if err := refreshCatalogueCount(ctx, tx); err != nil {
		return err
	}
	return tx.Commit()
}

func refreshCatalogueCount(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO exposure_counts (name, value) VALUES ('cves', (SELECT count(*) FROM cves WHERE in_catalogue = 1))`)
	return err
}

// RetireVulnerabilitiesNotSeen takes out of the catalogue what a complete
// listing by run runID did not return.
func (db *DB) RetireVulnerabilitiesNotSeen(ctx context.Context, runID int64) (int, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE cves SET in_catalogue = 0 WHERE in_catalogue = 1 AND seen_run < ?`, runID)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	if err := refreshCatalogueCount(ctx, tx); err != nil {
		return 0, err
	}
	return int(n), tx.Commit()
}

// LatestCatalogueUpdate is the newest updatedOn of the catalogue.
func (db *DB) LatestCatalogueUpdate(ctx context.Context) (time.Time, error) {
	var s sql.NullString
	if err := db.read.QueryRowContext(ctx, `SELECT max(updated_on) FROM cves WHERE in_catalogue = 1`).Scan(&s); err != nil {
		return time.Time{}, err
	}
	return parseTime(s.String), nil
}
