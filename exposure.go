package mdebridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"
)

// Exposure is what MDE's vulnerability management (TVM) knows of a tenant:
// the CVE catalogue, each machine's software inventory, and the
// machine × software × CVE rows that say which machine has which CVE
// through which software. A 100,000-machine tenant has millions of the
// latter; they come from the export APIs, never one machine at a time.

// Vulnerability is an entry of MDE's CVE catalogue (GET /api/vulnerabilities).
// Field names and JSON tags are MDE's own; Raw keeps the upstream object.
type Vulnerability struct {
	ID                string    `json:"id"` // CVE-2024-7256, or TVM-2020-0002 for TVM's own
	Name              string    `json:"name"`
	Description       string    `json:"description"`
	Severity          string    `json:"severity"` // Low, Medium, High, Critical
	CVSSV3            float64   `json:"cvssV3"`
	CVSSVector        string    `json:"cvssVector"`
	ExposedMachines   int       `json:"exposedMachines"`
	PublishedOn       time.Time `json:"publishedOn"`
	UpdatedOn         time.Time `json:"updatedOn"`
	FirstDetected     time.Time `json:"firstDetected"`
	PublicExploit     bool      `json:"publicExploit"`
	ExploitVerified   bool      `json:"exploitVerified"`
	ExploitInKit      bool      `json:"exploitInKit"`
	ExploitTypes      []string  `json:"exploitTypes"`
	ExploitURIs       []string  `json:"exploitUris"`
	CVESupportability string    `json:"cveSupportability"`
	Tags              []string  `json:"tags"`
	EPSS              *float64  `json:"epss"`

	Raw json.RawMessage `json:"-"`
}

// MachineVulnerability is one row of the vulnerability exports: a CVE found
// in one version of one product on one machine. A row with an empty CVEID
// is TVM's warning about software without a CVE (end of support). The
// delta API's rows also carry Status and EventTimestamp.
type MachineVulnerability struct {
	ID                           string
	DeviceID                     string
	DeviceName                   string
	RBACGroupName                string
	RBACGroupID                  int64
	OSPlatform                   string
	OSVersion                    string
	OSArchitecture               string
	SoftwareVendor               string
	SoftwareName                 string
	SoftwareVersion              string
	CVEID                        string
	Severity                     string   // vulnerabilitySeverityLevel
	CVSSScore                    *float64 // nil when the row has none
	RecommendedSecurityUpdate    string
	RecommendedSecurityUpdateID  string
	RecommendedSecurityUpdateURL string
	DiskPaths                    []string
	RegistryPaths                []string
	FirstSeen                    time.Time
	LastSeen                     time.Time
	ExploitabilityLevel          string // NoExploit, ExploitIsPublic, ExploitIsVerified, ExploitIsInKit
	RecommendationReference      string
	SecurityUpdateAvailable      *bool
	// Status (New, Fixed, Updated) and EventTimestamp are set on the rows
	// of the delta API only.
	Status         string
	EventTimestamp time.Time
	// Extra holds, as one JSON object, every field of the upstream row not
	// modelled above, so that nothing Microsoft adds is lost.
	Extra json.RawMessage
}

// SoftwareInstall is one row of the software inventory export: a product
// version installed on a machine.
type SoftwareInstall struct {
	DeviceID           string
	DeviceName         string
	RBACGroupName      string
	OSPlatform         string
	SoftwareVendor     string
	SoftwareName       string
	SoftwareVersion    string
	NumberOfWeaknesses int
	DiskPaths          []string
	RegistryPaths      []string
	FirstSeen          time.Time
	EndOfSupportStatus string // None, EOS Version, Upcoming EOS Version, EOS Software, Upcoming EOS Software
	EndOfSupportDate   time.Time
	Extra              json.RawMessage
}

// ExportInfo describes one export the service served.
type ExportInfo struct {
	// GeneratedTime is when the service computed the snapshot.
	GeneratedTime time.Time
	// Files is the number of files downloaded (0 for a JSON export).
	Files int
	// Via is "files" or "json".
	Via string
	// Skipped says the snapshot was already stored (ExportOptions.Unless).
	Skipped bool
}

// ErrExportUnavailable is wrapped by the error of an export via files that
// the service refused: the JSON export may still work.
var ErrExportUnavailable = errors.New("the export via files is unavailable")

// ErrExportChanged is wrapped when the service replaced the snapshot while
// it was being downloaded: the export must start over.
var ErrExportChanged = errors.New("the export snapshot changed while it was downloaded")

// RowLoad is a full replacement of a kind of rows: rows added are invisible
// until Commit swaps them in whole; Abort (or a failure, or a crash) leaves
// the previous rows as they were. A row added twice is stored once.
type RowLoad[T any] interface {
	Add(ctx context.Context, rows []T) error
	// Commit makes the loaded rows the current ones and returns how many
	// distinct rows they are.
	Commit(ctx context.Context) (int, error)
	// Abort drops what was loaded; it is a no-op after Commit.
	Abort(ctx context.Context) error
}

// ChangeCounts says what applying delta rows did.
type ChangeCounts struct {
	Added, Removed, Updated int
}

// SeverityRank orders severities: 0 unknown, 1 Low … 4 Critical.
func SeverityRank(s string) int {
	switch strings.ToLower(s) {
	case "low":
		return 1
	case "medium":
		return 2
	case "high":
		return 3
	case "critical":
		return 4
	}
	return 0
}

// VulnerabilityFilter selects CVEs found in the tenant. Empty fields do not
// filter.
type VulnerabilityFilter struct {
	Severity      string  // at least this severity
	MinCVSS       float64 // CVSS v3 at least
	ExploitOnly   bool    // a public exploit exists
	Machine       string  // found on this device id
	Software      string  // in this product: "vendor-_-name", or a name
	CVE           string  // this CVE, or CVEs whose id starts with it
	IncludeUnseen bool    // include catalogue entries no machine has
	Offset, Limit int     // Limit 0: no limit
}

// VulnerabilitySummary is a CVE with how many machines of the tenant have it.
type VulnerabilitySummary struct {
	Vulnerability
	// Machines is how many machines (within the filter) have it.
	Machines int `json:"-"`
	// Software lists the affected products ("vendor-_-name"), at most a few.
	Software []string `json:"-"`
	// InCatalogue is false for a CVE known only from the exports.
	InCatalogue bool `json:"-"`
}

// ExposedMachine is one machine that has a CVE, through one product version.
type ExposedMachine struct {
	MachineVulnerability
	// InInventory is false when the machine inventory does not know the
	// device (the export named a machine the machine sync has not seen).
	InInventory bool
}

// VulnerabilityDetail is one CVE with every machine that has it.
type VulnerabilityDetail struct {
	VulnerabilitySummary
	Exposed []ExposedMachine
}

// SoftwareFilter selects software products.
type SoftwareFilter struct {
	Vendor        string // exact, case-insensitive
	Name          string // name prefix
	Vulnerable    bool   // with at least one CVE row
	EndOfSupport  bool   // some installation is out of support
	Machine       string // installed on this machine
	Offset, Limit int
}

// SoftwareSummary is a product of the inventory with its figures. JSON
// names follow MDE's Software entity where one exists.
type SoftwareSummary struct {
	ID                 string `json:"id"` // vendor-_-name
	Name               string `json:"name"`
	Vendor             string `json:"vendor"`
	Weaknesses         int    `json:"weaknesses"`      // distinct CVEs found in it
	PublicExploit      bool   `json:"publicExploit"`   // one of them has a public exploit
	ExposedMachines    int    `json:"exposedMachines"` // machines with a CVE through it
	InstalledMachines  int    `json:"installedMachines"`
	Versions           int    `json:"versions"`
	EndOfSupportStatus string `json:"endOfSupportStatus,omitempty"`
}

// SoftwareVersion is one version of a product: TVM's distribution entry.
type SoftwareVersion struct {
	Version         string `json:"version"`
	Installations   int    `json:"installations"`
	Vulnerabilities int    `json:"vulnerabilities"`
	ExposedMachines int    `json:"exposedMachines"`
}

// SoftwareDetail is a product with its versions and CVEs.
type SoftwareDetail struct {
	SoftwareSummary
	Distributions   []SoftwareVersion      `json:"distributions"`
	Vulnerabilities []VulnerabilitySummary `json:"-"`
}

// MachineExposure sums up one machine's vulnerabilities and software.
type MachineExposure struct {
	DeviceID string `json:"deviceId"`
	// Vulnerabilities counts the machine's CVE rows by severity (Critical,
	// High, Medium, Low, and "" for unknown).
	Vulnerabilities map[string]int `json:"vulnerabilities"`
	// CVEs is the number of distinct CVEs.
	CVEs int `json:"cves"`
	// MostSevere is its worst CVE (highest severity, then CVSS), if any.
	MostSevere *MachineVulnerability `json:"mostSevere"`
	// Software is the number of installed products; VulnerableSoftware of
	// them have a CVE; EndOfSupport are out of support.
	Software           int `json:"software"`
	VulnerableSoftware int `json:"vulnerableSoftware"`
	EndOfSupport       int `json:"endOfSupport"`
}

// ExposureStore keeps the TVM data: the catalogue, the vulnerability rows
// and the software inventory, with full loads that swap in whole.
type ExposureStore interface {
	// BeginVulnerabilityLoad starts replacing every vulnerability row.
	BeginVulnerabilityLoad(ctx context.Context, runID int64) (RowLoad[MachineVulnerability], error)
	// ApplyVulnerabilityChanges applies delta rows (New, Updated: the row
	// is stored; Fixed: it is removed) in EventTimestamp order; applying
	// the same changes twice changes nothing.
	ApplyVulnerabilityChanges(ctx context.Context, runID int64, changes []MachineVulnerability) (ChangeCounts, error)
	// BeginSoftwareLoad starts replacing the software inventory.
	BeginSoftwareLoad(ctx context.Context, runID int64) (RowLoad[SoftwareInstall], error)
	// UpsertVulnerabilities stores catalogue entries seen by run runID.
	UpsertVulnerabilities(ctx context.Context, runID int64, vs []Vulnerability) error
	// RetireVulnerabilitiesNotSeen marks catalogue entries that a complete
	// listing by run runID did not return as gone from the catalogue.
	RetireVulnerabilitiesNotSeen(ctx context.Context, runID int64) (int, error)
	// LatestCatalogueUpdate is the newest updatedOn of the catalogue.
	LatestCatalogueUpdate(ctx context.Context) (time.Time, error)

	FindVulnerabilities(ctx context.Context, f VulnerabilityFilter) ([]VulnerabilitySummary, int, error)
	// FindVulnerability returns a CVE with its exposed machines (at most
	// limit of them; 0: all).
	FindVulnerability(ctx context.Context, id string, limit int) (*VulnerabilityDetail, error)
	FindSoftware(ctx context.Context, f SoftwareFilter) ([]SoftwareSummary, int, error)
	// FindSoftwareProduct looks a product up by id (vendor-_-name) or name.
	FindSoftwareProduct(ctx context.Context, key string) (*SoftwareDetail, error)
	// MachineExposure sums up a machine's rows (by its device id).
	MachineExposure(ctx context.Context, deviceID string) (*MachineExposure, error)
	// MachineVulnerabilities lists a machine's rows, most severe first.
	MachineVulnerabilities(ctx context.Context, deviceID string) ([]MachineVulnerability, error)
	// MachineSoftware lists a machine's software inventory.
	MachineSoftware(ctx context.Context, deviceID string) ([]SoftwareInstall, error)
}

// ExportOptions select how an export is fetched.
type ExportOptions struct {
	// Via is "files" (gzip JSON Lines from blob storage: the fewest calls)
	// or "json" (pages of the JSON API).
	Via string
	// Unless skips the download when the service's snapshot was generated
	// at this time (it is already stored); the returned info then has
	// Skipped set.
	Unless time.Time
}

// ExposureSource is MDE's vulnerability management: exports of the whole
// tenant, the delta of vulnerability changes, and the CVE catalogue.
// Callbacks are called from one goroutine at a time; an export may hand
// the same row twice (a file downloaded again after a failure).
type ExposureSource interface {
	ExportVulnerabilities(ctx context.Context, o ExportOptions, rows func([]MachineVulnerability) error) (ExportInfo, error)
	// VulnerabilityChanges hands the delta rows since the given time.
	VulnerabilityChanges(ctx context.Context, since time.Time, rows func([]MachineVulnerability) error) error
	ExportSoftware(ctx context.Context, o ExportOptions, rows func([]SoftwareInstall) error) (ExportInfo, error)
	// ListVulnerabilities hands the catalogue, or only the entries updated
	// after updatedAfter when it is not zero.
	ListVulnerabilities(ctx context.Context, updatedAfter time.Time, page func([]Vulnerability) error) error
}

// MarshalJSON writes the row as the exports do (camelCase, timestamps with
// a space and no zone), with the fields in Extra.
func (r MachineVulnerability) MarshalJSON() ([]byte, error) {
	fields := []jsonField{
		{"id", r.ID}, {"deviceId", r.DeviceID}, {"rbacGroupName", r.RBACGroupName}, {"deviceName", r.DeviceName},
		{"osPlatform", r.OSPlatform}, {"osVersion", r.OSVersion}, {"osArchitecture", r.OSArchitecture},
		{"softwareVendor", r.SoftwareVendor}, {"softwareName", r.SoftwareName}, {"softwareVersion", r.SoftwareVersion},
		{"cveId", orNull(r.CVEID)}, {"vulnerabilitySeverityLevel", orNull(r.Severity)},
		{"recommendedSecurityUpdate", orNull(r.RecommendedSecurityUpdate)}, {"recommendedSecurityUpdateId", orNull(r.RecommendedSecurityUpdateID)},
		{"recommendedSecurityUpdateUrl", orNull(r.RecommendedSecurityUpdateURL)}, {"diskPaths", nonNil(r.DiskPaths)}, {"registryPaths", nonNil(r.RegistryPaths)},
		{"lastSeenTimestamp", exportTime(r.LastSeen)}, {"firstSeenTimestamp", exportTime(r.FirstSeen)},
		{"exploitabilityLevel", r.ExploitabilityLevel}, {"recommendationReference", r.RecommendationReference},
	}
	if r.SecurityUpdateAvailable != nil {
		fields = append(fields, jsonField{"securityUpdateAvailable", *r.SecurityUpdateAvailable})
	}
	fields = append(fields, jsonField{"cvssScore", r.CVSSScore})
	if r.Status != "" {
		fields = append(fields, jsonField{"status", r.Status}, jsonField{"eventTimestamp", exportTime(r.EventTimestamp)})
	}
	return objectJSON(fields, r.Extra)
}

// MarshalJSON writes the row as the software inventory export does.
func (r SoftwareInstall) MarshalJSON() ([]byte, error) {
	var eos any
	if !r.EndOfSupportDate.IsZero() {
		eos = r.EndOfSupportDate.UTC().Format("2006-01-02T15:04:05+00:00")
	}
	return objectJSON([]jsonField{
		{"deviceId", r.DeviceID}, {"rbacGroupName", r.RBACGroupName}, {"deviceName", r.DeviceName}, {"osPlatform", r.OSPlatform},
		{"softwareVendor", r.SoftwareVendor}, {"softwareName", r.SoftwareName}, {"softwareVersion", r.SoftwareVersion},
		{"numberOfWeaknesses", r.NumberOfWeaknesses}, {"diskPaths", nonNil(r.DiskPaths)}, {"registryPaths", nonNil(r.RegistryPaths)},
		{"softwareFirstSeenTimestamp", exportTime(r.FirstSeen)}, {"endOfSupportStatus", r.EndOfSupportStatus}, {"endOfSupportDate", eos},
	}, r.Extra)
}

type jsonField struct {
	k string
	v any
}

// objectJSON writes fields in order, then the members of extra: a member
// of extra with a known name replaces it.
func objectJSON(fields []jsonField, extra json.RawMessage) ([]byte, error) {
	var more map[string]json.RawMessage
	if len(extra) > 0 && json.Unmarshal(extra, &more) == nil {
		for i := range fields {
			if v, ok := more[fields[i].k]; ok {
				fields[i].v = v
				delete(more, fields[i].k)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(more)) {
			fields = append(fields, jsonField{k, more[k]})
		}
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f.k)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(f.v)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// exportTime writes a timestamp as the exports do; zero is null.
func exportTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02 15:04:05.999")
}
