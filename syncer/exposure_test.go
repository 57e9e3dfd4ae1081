package syncer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/storetest"
	"github.com/mdebridge/mdebridge/syncer"
)

// fakeExposure is an ExposureSource whose answers a test scripts.
type fakeExposure struct {
	mu        sync.Mutex
	rows      []mdebridge.MachineVulnerability
	software  []mdebridge.SoftwareInstall
	changes   []mdebridge.MachineVulnerability
	cves      []mdebridge.Vulnerability
	generated time.Time
	calls     []string
	// refuseFiles makes exports via files refused; failAfter fails an
	// export after that many rows; changeOnce makes the first export fail
	// with ErrExportChanged.
	refuseFiles bool
	failAfter   int
	changeOnce  bool
	since       []time.Time
	updated     []time.Time
}

func (f *fakeExposure) call(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func hand[T any](rows []T, failAfter int, fn func([]T) error) error {
	for i := 0; i < len(rows); i += 7 {
		if failAfter > 0 && i >= failAfter {
			return errors.New("the connection broke off")
		}
		if err := fn(rows[i:min(i+7, len(rows))]); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeExposure) ExportVulnerabilities(ctx context.Context, o mdebridge.ExportOptions, fn func([]mdebridge.MachineVulnerability) error) (mdebridge.ExportInfo, error) {
	f.call("vulns " + o.Via)
	if o.Via == "files" && f.refuseFiles {
		return mdebridge.ExportInfo{}, fmt.Errorf("%w: 403 DisabledFeature", mdebridge.ErrExportUnavailable)
	}
	if f.changeOnce {
		f.changeOnce = false
		hand(f.rows[:len(f.rows)/2], 0, fn)
		return mdebridge.ExportInfo{}, mdebridge.ErrExportChanged
	}
	// Files may hand a row twice (a file fetched again).
	if err := hand(f.rows[:min(5, len(f.rows))], 0, fn); err != nil {
		return mdebridge.ExportInfo{}, err
	}
	return mdebridge.ExportInfo{Via: o.Via, GeneratedTime: f.generated, Files: 2}, hand(f.rows, f.failAfter, fn)
}

func (f *fakeExposure) VulnerabilityChanges(ctx context.Context, since time.Time, fn func([]mdebridge.MachineVulnerability) error) error {
	f.call("changes")
	f.since = append(f.since, since)
	return hand(f.changes, 0, fn)
}

func (f *fakeExposure) ExportSoftware(ctx context.Context, o mdebridge.ExportOptions, fn func([]mdebridge.SoftwareInstall) error) (mdebridge.ExportInfo, error) {
	f.call("software " + o.Via)
	if o.Unless.Equal(f.generated) {
		return mdebridge.ExportInfo{Via: o.Via, GeneratedTime: f.generated, Skipped: true}, nil
	}
	return mdebridge.ExportInfo{Via: o.Via, GeneratedTime: f.generated}, hand(f.software, 0, fn)
}

func (f *fakeExposure) ListVulnerabilities(ctx context.Context, updatedAfter time.Time, fn func([]mdebridge.Vulnerability) error) error {
	f.call("cves")
	f.updated = append(f.updated, updatedAfter)
	var out []mdebridge.Vulnerability
	for _, v := range f.cves {
		if v.UpdatedOn.After(updatedAfter) {
			out = append(out, v)
		}
	}
	return hand(out, 0, fn)
}

func cve(id string, updated time.Time) mdebridge.Vulnerability {
	return mdebridge.Vulnerability{ID: id, Severity: "High", CVSSV3: 7.5, UpdatedOn: updated, Raw: []byte(`{"id":"` + id + `"}`)}
}

type exposureRig struct {
	t      *testing.T
	src    *fakeExposure
	now    time.Time
	engine *syncer.Engine
	store  interface {
		mdebridge.Store
	}
}

func newExposureRig(t *testing.T) *exposureRig {
	db := openStore(t)
	rig := &exposureRig{t: t, src: &fakeExposure{generated: time.Date(2026, 11, 20, 6, 0, 0, 0, time.UTC)}, now: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC), store: db}
	o := syncer.ExposureOptions{Now: func() time.Time { return rig.now }, DeltaLimit: 50}
	e, err := syncer.New(syncer.Options{Store: db, Steps: []syncer.Step{
		syncer.CVECatalogueStep{Source: rig.src, Store: db, Options: o},
		syncer.VulnerabilitiesStep{Source: rig.src, Store: db, Options: o},
		syncer.SoftwareStep{Source: rig.src, Store: db, Options: o},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rig.engine = e
	return rig
}

func (rig *exposureRig) sync(full bool) map[string]mdebridge.StepResult {
	rig.t.Helper()
	rig.src.calls = nil
	run, err := rig.engine.Run(rig.t.Context(), syncer.RunOptions{Trigger: "test", Full: full})
	if err != nil {
		rig.t.Fatal(err)
	}
	out := map[string]mdebridge.StepResult{}
	for _, s := range run.Steps {
		out[s.Name] = s
	}
	return out
}

func (rig *exposureRig) count(name string) int {
	c, err := rig.store.Counts(rig.t.Context())
	if err != nil {
		rig.t.Fatal(err)
	}
	return c[name]
}

func TestExposureFullThenDeltas(t *testing.T) {
	rig := newExposureRig(t)
	src := rig.src
	for i := range 8 {
		for _, k := range []int{1, 2, 3} {
			src.rows = append(src.rows, storetest.VulnRow(i, k))
		}
		src.software = append(src.software, mdebridge.SoftwareInstall{DeviceID: storetest.Machine(i).ID, SoftwareVendor: "google", SoftwareName: "chrome", SoftwareVersion: "131"})
	}
	src.cves = []mdebridge.Vulnerability{cve("CVE-2026-1001", src.generated), cve("CVE-2026-1002", src.generated.Add(time.Hour))}
	steps := rig.sync(false)
	if s := steps["vulnerabilities"]; s.Status != mdebridge.StatusSucceeded || s.Items != 24 {
		t.Fatalf("first sync: %+v", s)
	}
	if s := steps["software"]; s.Items != 8 || s.Status != mdebridge.StatusSucceeded {
		t.Fatalf("software: %+v", s)
	}
	if s := steps["cves"]; s.Items != 2 {
		t.Fatalf("cves: %+v", s)
	}
	if rig.count("machine_vulnerabilities") != 24 || rig.count("machine_software") != 8 || rig.count("cves") != 2 {
		t.Fatalf("stored: %v", rig.count("machine_vulnerabilities"))
	}
	var cp struct{ Since time.Time }
	json.Unmarshal([]byte(steps["vulnerabilities"].Checkpoint), &cp)
	if !cp.Since.Equal(src.generated) {
		t.Errorf("checkpoint %s", steps["vulnerabilities"].Checkpoint)
	}

	// An hour later nothing changed: one call per step, nothing moved.
	rig.now = rig.now.Add(time.Hour)
	steps = rig.sync(false)
	if got := strings.Join(src.calls, ","); got != "cves,changes,software files" {
		t.Errorf("incremental cycle made calls %s", got)
	}
	if steps["vulnerabilities"].Items != 0 || steps["software"].Items != 0 {
		t.Errorf("incremental cycle: %+v", steps)
	}
	if src.since[0] != src.generated.Add(-time.Hour) || !src.updated[1].Equal(src.generated.Add(time.Hour)) {
		t.Errorf("asked changes since %v and catalogue updates after %v", src.since, src.updated)
	}

	// Changes: one fixed, one found.
	fixed := storetest.VulnRow(0, 1, func(r *mdebridge.MachineVulnerability) {
		r.Status, r.EventTimestamp = "Fixed", src.generated.Add(2*time.Hour)
	})
	found := storetest.VulnRow(9, 4, func(r *mdebridge.MachineVulnerability) {
		r.Status, r.EventTimestamp = "New", src.generated.Add(3*time.Hour)
	})
	src.changes = []mdebridge.MachineVulnerability{fixed, found}
	rig.now = rig.now.Add(time.Hour)
	steps = rig.sync(false)
	if s := steps["vulnerabilities"]; s.Items != 1 || s.Retired != 1 || rig.count("machine_vulnerabilities") != 24 {
		t.Errorf("delta: %+v, %d rows", s, rig.count("machine_vulnerabilities"))
	}
	json.Unmarshal([]byte(steps["vulnerabilities"].Checkpoint), &cp)
	if !cp.Since.Equal(found.EventTimestamp) {
		t.Errorf("checkpoint after the delta %s", steps["vulnerabilities"].Checkpoint)
	}

	// A delta over the limit is replaced by a full export.
	src.changes = nil
	for i := range 60 {
		src.changes = append(src.changes, storetest.VulnRow(i, 5, func(r *mdebridge.MachineVulnerability) { r.Status = "New" }))
	}
	rig.now = rig.now.Add(time.Hour)
	steps = rig.sync(false)
	if got := strings.Join(src.calls, ","); !strings.Contains(got, "changes,vulns files") || steps["vulnerabilities"].Items != 24 {
		t.Errorf("big delta: calls %s, %+v", got, steps["vulnerabilities"])
	}

	// A day after the last full export, the next one.
	src.changes = nil
	rig.now = rig.now.Add(25 * time.Hour)
	rig.sync(false)
	if got := strings.Join(src.calls, ","); !strings.Contains(got, "vulns files") || strings.Contains(got, "changes") {
		t.Errorf("daily full export: calls %s", got)
	}
}

func TestExposureExportFailuresKeepData(t *testing.T) {
	rig := newExposureRig(t)
	src := rig.src
	for i := range 10 {
		src.rows = append(src.rows, storetest.VulnRow(i, 1))
	}
	rig.sync(true)
	if n := rig.count("machine_vulnerabilities"); n != 10 {
		t.Fatalf("%d rows", n)
	}
	// A new export that breaks off half way: the old rows stay.
	src.rows = src.rows[:0]
	for i := range 30 {
		src.rows = append(src.rows, storetest.VulnRow(i, 2))
	}
	src.failAfter = 14
	steps := rig.sync(true)
	if s := steps["vulnerabilities"]; s.Status != mdebridge.StatusFailed || !strings.Contains(s.Error, "broke off") || s.Items != 0 {
		t.Errorf("failed export: %+v", s)
	}
	if n := rig.count("machine_vulnerabilities"); n != 10 {
		t.Errorf("%d rows after a failed export, want the 10 of the last good one", n)
	}
	// Files refused: the JSON export takes over.
	src.failAfter, src.refuseFiles = 0, true
	steps = rig.sync(true)
	if got := strings.Join(src.calls, ","); !strings.Contains(got, "vulns files,vulns json") || steps["vulnerabilities"].Items != 30 {
		t.Errorf("refused files: calls %s, %+v", got, steps["vulnerabilities"])
	}
	// The snapshot changed mid-download: start over once.
	src.refuseFiles, src.changeOnce = false, true
	steps = rig.sync(true)
	if got := strings.Join(src.calls, ","); !strings.Contains(got, "vulns files,vulns files") || steps["vulnerabilities"].Items != 30 || rig.count("machine_vulnerabilities") != 30 {
		t.Errorf("changed export: calls %s, %+v", got, steps["vulnerabilities"])
	}
}
