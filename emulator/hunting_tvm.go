package emulator

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge/emulator/kql"
)

// Advanced hunting's TVM tables, DeviceTvmSoftwareVulnerabilities and
// DeviceTvmSoftwareInventory: views of the current export snapshot, streamed
// row by row from the tenant's hooks (eachSoftwareVulnerability,
// eachSoftwareInventory), so a query over 5,000,000 rows holds none of them
// and counts exactly what GET /_emulator/tenant and the exports count.
//
// The columns are those a live tenant's getschema lists, in its order: the
// documented ones plus, for the vulnerabilities, CveMitigationStatus and
// AadDeviceId (which the docs' table leaves out). Like the service, the
// tables have no Timestamp: they hold the latest assessment only.
//
// Choices where the docs are silent (emulator/README.md repeats them):
//   - the export's rows of end-of-support products, which have no CVE, are
//     not in DeviceTvmSoftwareVulnerabilities (a table of CVEs; end of
//     support is DeviceTvmSoftwareInventory's EndOfSupportStatus);
//   - DeviceName is lower case, as in the other Device tables, so that
//     joins on it work;
//   - EndOfSupportStatus is "" where the export says "None" (hunting queries
//     find end-of-support software with isnotempty(EndOfSupportStatus));
//   - ProductCodeCpe is the CPE 2.3 name made of the product's vendor, name
//     and version (TVM's names are CPE names);
//   - CveTags are ZeroDay and NoSecurityUpdate while a CVE is published and
//     its fix is not yet released, else empty; CveMitigationStatus is always
//     "" (the model has no mitigations; live rows almost always have "").

// tvmColumn is how a TVM table's column reads a row of type R.
type tvmColumn[R any] struct {
	name string
	typ  kql.Type
	get  func(r *R) kql.Value
}

// tvmTable is a hunting table over one of the tenant's TVM hooks. Its
// partitions are machines.
type tvmTable[R any] struct {
	name string
	cols []tvmColumn[R]
	// each is the hook: it calls fn for every row of the machines keep
	// allows (nil: all) until fn returns false; the row is reused.
	each func(keep func(*machine) bool, fn func(*R) bool)
	// skip, when not nil, leaves rows of the hook out of the table.
	skip func(*R) bool
}

// machinePartition reads the machine-wide columns a partition filter may
// test; a tvmTable's partition columns are those of its columns found here.
var machinePartition = map[string]func(m *machine) kql.Value{
	"DeviceId":    func(m *machine) kql.Value { return str(m.ID) },
	"DeviceName":  func(m *machine) kql.Value { return str(strings.ToLower(m.ComputerDNSName)) },
	"OSPlatform":  func(m *machine) kql.Value { return str(m.OSPlatform) },
	"AadDeviceId": func(m *machine) kql.Value { return str(m.AADDeviceID.V) },
}

func (t *tvmTable[R]) Name() string { return t.name }

func (t *tvmTable[R]) Columns() []kql.Column {
	out := make([]kql.Column, len(t.cols))
	for i, c := range t.cols {
		out[i] = kql.Column{Name: c.name, Type: c.typ}
	}
	return out
}

func (t *tvmTable[R]) PartitionColumns() []string {
	var out []string
	for _, c := range t.cols {
		if machinePartition[c.name] != nil {
			out = append(out, c.name)
		}
	}
	return out
}

// Scan streams the hook's rows. A table without Timestamp ignores
// f.From/To, as the engine's where clauses still run on every row.
func (t *tvmTable[R]) Scan(ctx context.Context, f kql.Filter, emit func([]kql.Value) error) error {
	var keep func(*machine) bool
	if f.Partition != nil {
		probe := make([]kql.Value, len(t.cols))
		keep = func(m *machine) bool {
			clear(probe)
			for i, c := range t.cols {
				if get := machinePartition[c.name]; get != nil {
					probe[i] = get(m)
				}
			}
			return f.Partition(probe)
		}
	}
	scratch := make([]kql.Value, len(t.cols))
	var err error
	rows := 0
	t.each(keep, func(r *R) bool {
		if t.skip != nil && t.skip(r) {
			return true
		}
		if rows++; rows&4095 == 0 {
			if err = ctx.Err(); err != nil {
				return false
			}
		}
		for i, c := range t.cols {
			if f.Columns == nil || f.Columns[i] {
				scratch[i] = c.get(r)
			}
		}
		if f.Row != nil && !f.Row(scratch) {
			return true
		}
		out := scratch
		if !f.Reuse {
			out = slices.Clone(scratch)
		}
		err = emit(out)
		return err == nil
	})
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// cveTags are the CveTags of c's rows at t: a CVE published before its fix
// is a zero-day with no security update until the fix is released.
func (tm *tvmModel) cveTags(l *tvmLine, c *tvmCVE, at time.Time) []string {
	if tm.release(l, c.fixStep).After(at) {
		return zeroDayTags
	}
	return nil
}

// zeroDayTags is shared by every row that has them; read-only.
var zeroDayTags = []string{"ZeroDay", "NoSecurityUpdate"}

// emptyTags is the CveTags value of a row without tags; read-only.
var emptyTags = kql.DynamicValue([]any{})

func tagsValue(tags []string) kql.Value {
	if len(tags) == 0 {
		return emptyTags
	}
	out := make([]any, len(tags))
	for i, t := range tags {
		out[i] = t
	}
	return kql.DynamicValue(out)
}

// cpeName is the CPE 2.3 formatted name of a product version: part "o" for
// an operating system, "a" for an application.
func cpeName(os bool, vendor, product, version string) string {
	part := "a"
	if os {
		part = "o"
	}
	var b strings.Builder
	b.Grow(len(vendor) + len(product) + len(version) + 32)
	b.WriteString("cpe:2.3:")
	b.WriteString(part)
	for _, f := range []string{vendor, product, version} {
		b.WriteByte(':')
		if f == "" {
			b.WriteByte('*')
			continue
		}
		for i := 0; i < len(f); i++ {
			ch := f[i]
			switch {
			case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9', ch == '_', ch == '-', ch == '.':
			case ch >= 'A' && ch <= 'Z':
				ch += 'a' - 'A'
			default:
				b.WriteByte('\\') // CPE 2.3 quotes every other printable character
			}
			b.WriteByte(ch)
		}
	}
	b.WriteString(":*:*:*:*:*:*:*")
	return b.String()
}

func optDateTime(t time.Time) kql.Value {
	if t.IsZero() {
		return kql.Value{}
	}
	return kql.Value{Kind: kql.DateTime, I: t.UnixNano()}
}

// strColumn is a string column.
func strColumn[R any](name string, get func(r *R) string) tvmColumn[R] {
	return tvmColumn[R]{name, kql.String, func(r *R) kql.Value { return str(get(r)) }}
}

// deviceSoftwareColumns are the columns both TVM tables start with.
func deviceSoftwareColumns[R any](of func(*R) *DeviceSoftware) []tvmColumn[R] {
	col := func(name string, get func(d *DeviceSoftware) string) tvmColumn[R] {
		return strColumn(name, func(r *R) string { return get(of(r)) })
	}
	return []tvmColumn[R]{
		col("DeviceId", func(d *DeviceSoftware) string { return d.DeviceID }),
		col("DeviceName", func(d *DeviceSoftware) string { return strings.ToLower(d.DeviceName) }),
		col("OSPlatform", func(d *DeviceSoftware) string { return d.OSPlatform }),
		col("OSVersion", func(d *DeviceSoftware) string { return d.OSVersion }),
		col("OSArchitecture", func(d *DeviceSoftware) string { return d.OSArchitecture }),
		col("SoftwareVendor", func(d *DeviceSoftware) string { return d.SoftwareVendor }),
		col("SoftwareName", func(d *DeviceSoftware) string { return d.SoftwareName }),
		col("SoftwareVersion", func(d *DeviceSoftware) string { return d.SoftwareVersion }),
	}
}

// newTVMVulnerabilitiesTable is DeviceTvmSoftwareVulnerabilities.
func newTVMVulnerabilitiesTable(t *Tenant) *tvmTable[SoftwareVulnerabilityRow] {
	type row = SoftwareVulnerabilityRow
	s := strColumn[row]
	return &tvmTable[row]{
		name: "DeviceTvmSoftwareVulnerabilities",
		cols: append(deviceSoftwareColumns(func(r *row) *DeviceSoftware { return &r.DeviceSoftware }),
			s("CveId", func(r *row) string { return r.CveID }),
			s("VulnerabilitySeverityLevel", func(r *row) string { return r.VulnerabilitySeverityLevel }),
			s("RecommendedSecurityUpdate", func(r *row) string { return r.RecommendedSecurityUpdate }),
			s("RecommendedSecurityUpdateId", func(r *row) string { return r.RecommendedSecurityUpdateID }),
			tvmColumn[row]{"CveTags", kql.Dynamic, func(r *row) kql.Value { return tagsValue(r.CveTags) }},
			s("CveMitigationStatus", func(*row) string { return "" }),
			s("AadDeviceId", func(r *row) string { return r.AADDeviceID }),
		),
		each: t.eachSoftwareVulnerability,
		skip: func(r *row) bool { return r.CveID == "" },
	}
}

// newTVMInventoryTable is DeviceTvmSoftwareInventory.
func newTVMInventoryTable(t *Tenant) *tvmTable[SoftwareInventoryRow] {
	type row = SoftwareInventoryRow
	s := strColumn[row]
	return &tvmTable[row]{
		name: "DeviceTvmSoftwareInventory",
		cols: append(deviceSoftwareColumns(func(r *row) *DeviceSoftware { return &r.DeviceSoftware }),
			s("EndOfSupportStatus", func(r *row) string {
				if r.EndOfSupportStatus == "None" {
					return ""
				}
				return r.EndOfSupportStatus
			}),
			tvmColumn[row]{"EndOfSupportDate", kql.DateTime, func(r *row) kql.Value { return optDateTime(r.EndOfSupportDate) }},
			s("ProductCodeCpe", func(r *row) string {
				return cpeName(r.OperatingSystem, r.SoftwareVendor, r.SoftwareName, r.SoftwareVersion)
			}),
		),
		each: t.eachSoftwareInventory,
	}
}
