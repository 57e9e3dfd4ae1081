package emulator

import (
	"strings"
	"sync"
	"time"
)

// The tenant's TVM state: the model (tvm_model.go), the machines added
// after generation (their TVM data starts when they joined), and the export
// snapshots.
//
// Like the live service, exports are snapshots: the data is recomputed
// every snapshotPeriod, and an export (files or JSON) serves the latest
// snapshot, never "now". The delta API reports changes up to that same
// snapshot, so a full export followed by deltas always describes one
// consistent state.

// snapshotPeriod is how often the service regenerates its export snapshot
// ("the full snapshot is regenerated every ~6 hours").
const snapshotPeriod = 6 * time.Hour

// tenantTVM is the TVM part of a Tenant.
type tenantTVM struct {
	perMachine float64   // average vulnerability rows per machine (0: default)
	perFile    int       // machines per export file
	epoch      time.Time // the model's reference time (the tenant's generation)

	once  sync.Once
	model *tvmModel

	mu    sync.Mutex
	added map[string]time.Time // lower-case id -> when the machine joined
	snaps []*tvmSnapshot       // the newest few, newest last
	delta *tvmDeltaResult      // the last delta computed
}

// tvm returns the tenant's TVM model, built on first use.
func (t *Tenant) tvm() *tvmModel {
	t.tvmState.once.Do(func() {
		epoch := t.tvmState.epoch
		if epoch.IsZero() {
			epoch = t.clock()
		}
		t.tvmState.model = newTVMModel(uint64(seedFromString(t.id))^0x74766d, epoch, t.tvmState.perMachine)
	})
	return t.tvmState.model
}

// clock is the tenant's current time.
func (t *Tenant) clock() time.Time {
	t.mu.RLock()
	now := t.now
	t.mu.RUnlock()
	return now()
}

func (t *Tenant) setExportFileMachines(n int) {
	if n <= 0 {
		n = defaultExportFileMachines
	}
	t.tvmState.mu.Lock()
	defer t.tvmState.mu.Unlock()
	t.tvmState.perFile = n
}

// VulnsPerMachine is the configured average of vulnerability rows per machine.
func (t *Tenant) VulnsPerMachine() float64 {
	if t.tvmState.perMachine > 0 {
		return t.tvmState.perMachine
	}
	return defaultVulnsPerMachine
}

// machineJoined records that a machine came into the tenant at when: it has
// TVM data from then on (and the delta API reports it as new).
func (t *Tenant) machineJoined(id string, when time.Time) {
	t.tvmState.mu.Lock()
	defer t.tvmState.mu.Unlock()
	if t.tvmState.added == nil {
		t.tvmState.added = map[string]time.Time{}
	}
	t.tvmState.added[strings.ToLower(id)] = when
}

// joinedAt is when a machine came into the tenant (zero: at generation).
func (t *Tenant) joinedAt(id string) time.Time {
	t.tvmState.mu.Lock()
	defer t.tvmState.mu.Unlock()
	return t.tvmState.added[strings.ToLower(id)]
}

// snapshotTime is the time of the snapshot current at now.
func snapshotTime(now time.Time) time.Time { return now.UTC().Truncate(snapshotPeriod) }

// tvmSnapshot is the export data as of one snapshot time. Its counts and
// aggregates are computed on first use; its export files are encoded on
// first download request.
type tvmSnapshot struct {
	at       time.Time
	model    *tvmModel
	machines []*machine
	joined   []time.Time // per machine: when it joined (zero: always there)
	perFile  int         // machines per export file

	aggOnce sync.Once
	agg     *tvmAggregates

	filesMu sync.Mutex
	files   map[exportKind]*exportFiles
}

// snapshot returns the snapshot current at now.
func (t *Tenant) snapshot(now time.Time) *tvmSnapshot {
	model := t.tvm()
	at := snapshotTime(now)
	if s := t.snapshotAt(at); s != nil {
		return s
	}
	// Lock order: the tenant's machines before its TVM state (AddMachines
	// records joins while it holds the former).
	t.mu.RLock()
	ms := append([]*machine(nil), t.machines...)
	t.mu.RUnlock()
	ts := &t.tvmState
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, s := range ts.snaps {
		if s.at.Equal(at) {
			return s
		}
	}
	joined := make([]time.Time, len(ms))
	for i, m := range ms {
		joined[i] = ts.added[strings.ToLower(m.ID)]
	}
	s := &tvmSnapshot{at: at, model: model, machines: ms, joined: joined, perFile: max(1, ts.perFile), files: map[exportKind]*exportFiles{}}
	if ts.perFile == 0 {
		s.perFile = defaultExportFileMachines
	}
	// Keep two: downloads of the previous snapshot's files may still run.
	ts.snaps = append(ts.snaps, s)
	if len(ts.snaps) > 2 {
		ts.snaps = ts.snaps[len(ts.snaps)-2:]
	}
	return s
}

// snapshotAt finds a kept snapshot by its time.
func (t *Tenant) snapshotAt(at time.Time) *tvmSnapshot {
	t.tvmState.mu.Lock()
	defer t.tvmState.mu.Unlock()
	for _, s := range t.tvmState.snaps {
		if s.at.Equal(at) {
			return s
		}
	}
	return nil
}

// tvmAggregates are the figures the TVM entity APIs report, computed in one
// pass over a snapshot's rows.
type tvmAggregates struct {
	vulnRows      int // rows with a CVE
	vulnRowsNoCVE int // rows without (end-of-support software)
	softwareRows  int
	exposed       []int32 // per catalogue CVE (ordinal): exposed machines
	perProduct    []productAgg
	perGroup      map[string]*groupAgg
	machineScore  []float64 // per machine: exposure score 0..100
}

// productAgg is one product's installations by release.
type productAgg struct {
	installed  int
	vulnerable int                 // machines with at least one open CVE in it
	versions   map[int]*versionAgg // by release
	cves       map[*tvmCVE]bool    // open CVEs on some machine
}

type versionAgg struct{ installations, vulnerable int }

type groupAgg struct {
	machines int
	score    float64
}

// aggregates computes (once) the snapshot's counts and per-entity figures.
func (s *tvmSnapshot) aggregates() *tvmAggregates {
	s.aggOnce.Do(func() {
		tm := s.model
		a := &tvmAggregates{
			exposed:      make([]int32, len(tm.cves)),
			perProduct:   make([]productAgg, len(tm.products)),
			perGroup:     map[string]*groupAgg{},
			machineScore: make([]float64, len(s.machines)),
		}
		for i := range a.perProduct {
			a.perProduct[i].versions = map[int]*versionAgg{}
			a.perProduct[i].cves = map[*tvmCVE]bool{}
		}
		seen := map[*tvmCVE]bool{}
		for i, m := range s.machines {
			clear(seen)
			vulnerable := map[int]bool{}
			weight := 0.0
			s.eachInstall(i, func(in *tvmInstall, n int, first time.Time, open []*tvmCVE) {
				a.softwareRows++
				pa := &a.perProduct[in.p.idx]
				pa.installed++
				v := pa.versions[n]
				if v == nil {
					v = &versionAgg{}
					pa.versions[n] = v
				}
				v.installations++
				if in.eos(s.at) {
					a.vulnRowsNoCVE++
				}
				if len(open) > 0 {
					pa.vulnerable++
					v.vulnerable++
					vulnerable[in.p.idx] = true
				}
				for _, c := range open {
					a.vulnRows++
					pa.cves[c] = true
					if !seen[c] {
						seen[c] = true
						a.exposed[c.ordinal]++
						weight += c.cvss * c.cvss
					}
				}
			})
			// An exposure score in the portal's spirit: 0 (no exposure)
			// to 100, growing with the sum of squared CVSS scores.
			score := 100 * (1 - 1/(1+weight/400))
			a.machineScore[i] = score
			g := "Unassigned"
			if m.RBACGroupName.OK {
				g = m.RBACGroupName.V
			}
			ga := a.perGroup[g]
			if ga == nil {
				ga = &groupAgg{}
				a.perGroup[g] = ga
			}
			ga.machines++
			ga.score += score
		}
		s.agg = a
	})
	return s.agg
}

// eachInstall calls fn for every install of machine i of the snapshot with
// its release, since when it runs it, and its CVEs open at the snapshot.
func (s *tvmSnapshot) eachInstall(i int, fn func(in *tvmInstall, n int, first time.Time, open []*tvmCVE)) {
	tm := s.model
	if s.joined[i].After(s.at) {
		return
	}
	spec := tm.spec(s.machines[i], s.joined[i])
	s.eachSpecInstall(&spec, fn)
}

// eachSpecInstall is eachInstall for a machine whose spec is at hand.
func (s *tvmSnapshot) eachSpecInstall(spec *tvmMachineSpec, fn func(in *tvmInstall, n int, first time.Time, open []*tvmCVE)) {
	tm := s.model
	var open []*tvmCVE
	for k := range spec.installs {
		in := &spec.installs[k]
		n, first := tm.stepOf(in, s.at)
		open = open[:0]
		tm.openCVEs(in.p, n, s.at, func(c *tvmCVE) bool {
			open = append(open, c)
			return true
		})
		fn(in, n, first, open)
	}
}

// TVMCounts are the rows a tenant's current export snapshot holds: exactly
// what a full sync through the exports must store.
type TVMCounts struct {
	SnapshotTime time.Time `json:"snapshotTime"`
	// Vulnerabilities are machine × software × CVE rows.
	Vulnerabilities int `json:"vulnerabilities"`
	// VulnerabilitiesWithoutCVE are rows with a null cveId (end-of-support
	// software).
	VulnerabilitiesWithoutCVE int `json:"vulnerabilitiesWithoutCve"`
	// Software are machine × software inventory rows.
	Software int `json:"software"`
	// CVEs is the size of the CVE catalogue (GET /api/vulnerabilities).
	CVEs int `json:"cves"`
	// VulnerableMachines have at least one CVE row.
	VulnerableMachines int `json:"vulnerableMachines"`
}

// TVMCounts reports the current snapshot's rows and the catalogue's size.
func (t *Tenant) TVMCounts() TVMCounts {
	now := t.clock()
	s := t.snapshot(now)
	a := s.aggregates()
	vulnerable := 0
	for _, sc := range a.machineScore {
		if sc > 0 {
			vulnerable++
		}
	}
	return TVMCounts{
		SnapshotTime: s.at, Vulnerabilities: a.vulnRows, VulnerabilitiesWithoutCVE: a.vulnRowsNoCVE,
		Software: a.softwareRows, CVEs: len(s.model.cvesPublished(s.at)), VulnerableMachines: vulnerable,
	}
}

// DeviceSoftware is what every TVM row says of its device and product.
type DeviceSoftware struct {
	DeviceID, DeviceName, OSPlatform, OSVersion, OSArchitecture string
	SoftwareVendor, SoftwareName, SoftwareVersion               string
}

// SoftwareVulnerabilityRow is one row of the DeviceTvmSoftwareVulnerabilities
// view of the tenant (and of the vulnerability exports). CveID is "" on the
// row of an end-of-support product.
type SoftwareVulnerabilityRow struct {
	DeviceSoftware
	AADDeviceID                                            string
	CveID, VulnerabilitySeverityLevel                      string
	RecommendedSecurityUpdate, RecommendedSecurityUpdateID string
	CvssScore                                              float64
	ExploitabilityLevel                                    string
	// CveTags are TVM's tags of the CVE at the snapshot (shared, read-only).
	CveTags             []string
	FirstSeen, LastSeen time.Time
}

// SoftwareInventoryRow is one row of the DeviceTvmSoftwareInventory view.
type SoftwareInventoryRow struct {
	DeviceSoftware
	NumberOfWeaknesses int
	EndOfSupportStatus string
	EndOfSupportDate   time.Time // zero: none
	FirstSeen          time.Time
	OperatingSystem    bool // the product is the machine's OS
}

// eachSoftwareVulnerability calls fn for every software vulnerability row of
// the current snapshot (what DeviceTvmSoftwareVulnerabilities holds), machine
// by machine, until fn returns false. It is the hook for advanced hunting's
// DeviceTvmSoftwareVulnerabilities table; the rows are the export's. keep,
// when not nil, skips the machines for which it is false before any of
// their rows is computed. fn must not keep the row: it is reused.
func (t *Tenant) eachSoftwareVulnerability(keep func(*machine) bool, fn func(*SoftwareVulnerabilityRow) bool) {
	s := t.snapshot(t.clock())
	var r SoftwareVulnerabilityRow
	for i, m := range s.machines {
		if keep != nil && !keep(m) {
			continue
		}
		ctx := s.rowContext(i)
		ok := s.model.specRows(&ctx.spec, s.at, func(in *tvmInstall, n int, c *tvmCVE, first time.Time) bool {
			v := s.model.vulnRowAt(in, n, c, s.at)
			r = SoftwareVulnerabilityRow{
				DeviceSoftware: ctx.deviceSoftware(in.p, v.version), AADDeviceID: m.AADDeviceID.V,
				RecommendedSecurityUpdate: v.fix.update.V, RecommendedSecurityUpdateID: v.fix.id.V,
				ExploitabilityLevel: v.exploit, FirstSeen: first, LastSeen: maxTime(ctx.lastSeen, first),
			}
			if c != nil {
				r.CveID, r.VulnerabilitySeverityLevel, r.CvssScore = c.id, c.severity, c.cvss
				r.CveTags = s.model.cveTags(in.p.line, c, s.at)
			}
			return fn(&r)
		})
		if !ok {
			return
		}
	}
}

// eachSoftwareInventory calls fn for every software inventory row of the
// current snapshot (what DeviceTvmSoftwareInventory holds) until fn returns
// false. It is the hook for advanced hunting's DeviceTvmSoftwareInventory;
// keep and the reused row are as for eachSoftwareVulnerability.
func (t *Tenant) eachSoftwareInventory(keep func(*machine) bool, fn func(*SoftwareInventoryRow) bool) {
	s := t.snapshot(t.clock())
	stop := false
	var r SoftwareInventoryRow
	for i, m := range s.machines {
		if keep != nil && !keep(m) {
			continue
		}
		ctx := s.rowContext(i) // no installs when the machine joined after the snapshot
		s.eachSpecInstall(&ctx.spec, func(in *tvmInstall, n int, first time.Time, open []*tvmCVE) {
			if stop {
				return
			}
			r = SoftwareInventoryRow{
				DeviceSoftware:     ctx.deviceSoftware(in.p, s.model.version(in.p, n)),
				NumberOfWeaknesses: len(open), EndOfSupportStatus: eosStatus(in.p, s.at), EndOfSupportDate: in.p.eos, FirstSeen: first,
				OperatingSystem: in.p.os,
			}
			stop = !fn(&r)
		})
		if stop {
			return
		}
	}
}

// eosStatus is the inventory's endOfSupportStatus of p at t.
func eosStatus(p *tvmProduct, t time.Time) string {
	switch {
	case p.eos.IsZero():
		return "None"
	case !p.eos.After(t):
		return "EOS Software"
	case p.eos.Before(t.Add(180 * day)):
		return "Upcoming EOS Software"
	}
	return "None"
}
