package response_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/emulator"
)

func csvFile(n int, bad ...string) []byte {
	var b bytes.Buffer
	b.WriteString("indicatorValue,indicatorType,action,title\n")
	for i := range n {
		fmt.Fprintf(&b, "%064x,FileSha256,Block,ioc %d\n", i+1, i)
	}
	for _, l := range bad {
		b.WriteString(l + "\n")
	}
	return b.Bytes()
}

const importAPI = "POST /api/indicators/import"

// 1,000 indicators from a CSV file arrive in two import calls; 3,000 in six,
// inside 30 a minute (bench indicators measures 10,000).
func TestImportInBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, setup{machines: 10})
		rep, err := h.svc.ImportIndicatorFile(t.Context(), bytes.NewReader(csvFile(1000)), "csv",
			mdebridge.IndicatorImport{Comment: "feed", Actor: "alice"})
		if err != nil || rep.Calls != 2 || rep.Imported != 1000 || rep.Failed != 0 || rep.New != 1000 {
			t.Fatalf("import: %v %+v", err, rep)
		}
		if n := h.calls(importAPI); n != 2 {
			t.Errorf("%d import calls", n)
		}
		// Again: nothing new, and the store knows them (a dry run says so).
		rep, err = h.svc.ImportIndicatorFile(t.Context(), bytes.NewReader(csvFile(1000)), "csv",
			mdebridge.IndicatorImport{Comment: "feed", DryRun: true})
		if err != nil || rep.New != 0 || rep.Changed+rep.Unchanged != 1000 || rep.Calls != 0 || h.calls(importAPI) != 2 {
			t.Fatalf("dry run: %v %+v", err, rep)
		}
		start := time.Now()
		rep, err = h.svc.ImportIndicatorFile(t.Context(), bytes.NewReader(csvFile(3000)), "csv", mdebridge.IndicatorImport{Comment: "big feed"})
		if err != nil || rep.Calls != 6 || rep.Imported != 3000 {
			t.Fatalf("3,000: %v %+v", err, rep)
		}
		if st := h.emu.Stats(); st.Throttled != 0 {
			t.Errorf("%d calls throttled", st.Throttled)
		}
		if took := time.Since(start); took > time.Minute {
			t.Errorf("6 import calls took %v: under 30 a minute they need not wait", took)
		}
		if es := h.audit(mdebridge.AuditFilter{Operation: "indicators.import", Actor: "alice"}); len(es) != 1001 {
			t.Errorf("%d audit entries for the first import (one summary, one per indicator)", len(es))
		}
	})
}

// Invalid lines are reported with their line numbers and the valid ones
// imported; with --atomic, none are.
func TestImportBadLines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, setup{machines: 10})
		file := csvFile(3, "not-a-hash,FileSha1,Block,x", "10.1.2.3,IpAddress,Block,private", "http//broken,Url,Block,x", "evil.example,DomainName,Block,ok")
		rep, err := h.svc.ImportIndicatorFile(t.Context(), bytes.NewReader(file), "csv", mdebridge.IndicatorImport{Comment: "feed", Atomic: true})
		if err != nil || rep.Aborted == "" || len(rep.Problems) != 3 || h.calls(importAPI) != 0 {
			t.Fatalf("atomic: %v %+v", err, rep)
		}
		var lines []int
		for _, p := range rep.Problems {
			lines = append(lines, p.Line)
		}
		if fmt.Sprint(lines) != "[5 6 7]" {
			t.Errorf("problem lines %v", lines)
		}
		rep, err = h.svc.ImportIndicatorFile(t.Context(), bytes.NewReader(file), "csv", mdebridge.IndicatorImport{Comment: "feed"})
		if err != nil || rep.Imported != 4 || len(rep.Problems) != 3 || rep.Calls != 1 {
			t.Fatalf("non-atomic: %v %+v", err, rep)
		}
		if _, err := h.svc.ImportIndicatorFile(t.Context(), strings.NewReader("value,sevrity\n"), "csv", mdebridge.IndicatorImport{Comment: "x"}); !isUsage(err) {
			t.Errorf("unknown column: %v", err)
		}
		if _, err := h.svc.ImportIndicatorFile(t.Context(), bytes.NewReader(file), "csv", mdebridge.IndicatorImport{}); !isUsage(err) {
			t.Errorf("no comment: %v", err)
		}
	})
}

func TestAddUpdateDeleteIndicator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, setup{machines: 10})
		in := mdebridge.Indicator{IndicatorValue: "Evil.Example", Title: "c2", Action: "Block"}
		rep, err := h.svc.ImportIndicators(t.Context(), mdebridge.IndicatorImport{Indicators: []mdebridge.Indicator{in}, Comment: "c2 found", Operation: "indicators.add"})
		if err != nil || rep.Imported != 1 || rep.Results[0].ID == "" || h.calls("POST /api/indicators") != 1 {
			t.Fatalf("add: %v %+v", err, rep)
		}
		stored, err := h.store.FindIndicator(t.Context(), "evil.example")
		if err != nil || stored.IndicatorType != "DomainName" || !bytes.Contains(stored.Raw, []byte(`"createdBySource":"PublicApi"`)) {
			t.Fatalf("stored: %v %+v", err, stored)
		}
		upd := *stored
		upd.Action, upd.Severity = "Warn", "High"
		rep, err = h.svc.ImportIndicators(t.Context(), mdebridge.IndicatorImport{Indicators: []mdebridge.Indicator{upd}, Comment: "downgrade", Operation: "indicators.update"})
		if err != nil || rep.Changed != 1 || rep.Results[0].ID != stored.ID {
			t.Fatalf("update: %v %+v", err, rep)
		}
		ids, err := h.svc.DeleteIndicators(t.Context(), []string{"evil.example"}, "gone", "alice")
		if err != nil || len(ids) != 1 || ids[0] != stored.ID {
			t.Fatalf("delete: %v %v", err, ids)
		}
		if _, err := h.store.FindIndicator(t.Context(), stored.ID); !errors.Is(err, mdebridge.ErrNotFound) {
			t.Errorf("deleted indicator still live in the store: %v", err)
		}
		if _, err := h.svc.DeleteIndicators(t.Context(), []string{"never.example"}, "x", "alice"); !errors.Is(err, mdebridge.ErrNotFound) {
			t.Errorf("unknown indicator: %v", err)
		}
	})
}

func TestEnrich(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, setup{machines: 300, alerts: 300})
		var malware emulator.CatalogFile
		for _, f := range h.emu.Tenant().CatalogFiles() {
			if f.Determination == "Malware" && f.InTenant && f.Name == "svhost.exe" {
				malware = f
			}
		}
		// The store knows an indicator on it, as after a sync.
		if _, err := h.svc.ImportIndicators(t.Context(), mdebridge.IndicatorImport{Comment: "x", Operation: "indicators.add",
			Indicators: []mdebridge.Indicator{{IndicatorValue: malware.SHA1, Action: "Block", Title: "svhost"}}}); err != nil {
			t.Fatal(err)
		}
		e, err := h.svc.Enrich(t.Context(), strings.ToUpper(malware.SHA256))
		if err != nil || e.Kind != "file" || e.Info == nil || e.Stats == nil || len(e.Errors) != 0 || len(e.Indicators) != 1 {
			t.Fatalf("file: %v %+v", err, e)
		}
		var info struct{ DeterminationType string }
		json.Unmarshal(e.Info, &info)
		if info.DeterminationType != "Malware" {
			t.Errorf("info: %s", e.Info)
		}
		e, err = h.svc.Enrich(t.Context(), "office.com")
		if err != nil || e.Kind != "domain" || len(e.Machines) == 0 {
			t.Fatalf("domain: %v %+v", err, e)
		}
		m := h.machine(onlineWindows)
		user := h.emu.Tenant().LogonUsers(m.ID, time.Now())[0]
		e, err = h.svc.Enrich(t.Context(), `CORP\`+user)
		if err != nil || e.Kind != "user" || len(e.Machines) == 0 {
			t.Fatalf("user: %v %+v", err, e)
		}
		e, err = h.svc.Enrich(t.Context(), "https://office.com/x")
		if err != nil || e.Kind != "url" || e.Stats == nil {
			t.Fatalf("url: %v %+v", err, e)
		}
		if _, err := h.svc.Enrich(t.Context(), "not a thing"); !isUsage(err) {
			t.Errorf("nonsense: %v", err)
		}
	})
}

// A part the credentials may not read is named in the view; the rest shows.
func TestEnrichNamesMissingPermission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, setup{machines: 50, roles: []string{"Machine.Read.All", "Ip.Read.All"}})
		e, err := h.svc.Enrich(t.Context(), "8.8.8.8")
		if err != nil || e.Stats == nil || !strings.Contains(e.Errors["alerts"], "Alert.Read.All") || e.Errors["machines"] != "" {
			t.Fatalf("%v %+v", err, e)
		}
	})
}
