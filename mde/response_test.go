package mde_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/emulator/emulatortest"
	"github.com/mdebridge/mdebridge/mde"
)

// objects splits a fixture into its objects: a collection's value, JSON
// Lines, or the one object.
func objects(t *testing.T, name string) []json.RawMessage {
	t.Helper()
	data := fixture(t, name)
	if strings.HasSuffix(name, ".ndjson") {
		var out []json.RawMessage
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			out = append(out, append(json.RawMessage(nil), sc.Bytes()...))
		}
		return out
	}
	var page struct {
		Value *[]json.RawMessage `json:"value"`
	}
	if json.Unmarshal(data, &page) == nil && page.Value != nil {
		return *page.Value
	}
	return []json.RawMessage{data}
}

// Every machine action payload known from the docs, captures and peers parses.
func TestMachineActionFixturesParse(t *testing.T) {
	files := []string{
		"docs/machineaction-get.json", "docs/machineaction-isolate.json", "docs/machineaction-liveresponse.json",
		"docs/machineaction-resource.json", "docs/machineactions-list.json", "docs/machineactions-list-filter-machineid-top2.json",
		"docs/odata-machineactions-filter-requestor-type.json", "observed/cancel_machine_action.json",
		"observed/run_antivirus_scan.json", "peers/elastic-integrations/machine_actions.ndjson",
	}
	n := 0
	for _, f := range files {
		for _, raw := range objects(t, f) {
			a, err := mde.DecodeMachineAction(raw)
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			n++
			if a.Type == "" || a.Status == "" || a.CreationTime.IsZero() || a.LastUpdateTime.IsZero() {
				t.Errorf("%s: fields lost: %+v", f, a)
			}
			if bytes.Contains(a.Raw, []byte("@odata.context")) {
				t.Errorf("%s: raw keeps @odata.context", f)
			}
		}
	}
	if n < 15 {
		t.Errorf("only %d actions parsed", n)
	}
	// The old spelling of the update time, live response commands, related files.
	a, _ := mde.DecodeMachineAction(fixture(t, "docs/machineaction-isolate.json"))
	if a.LastUpdateTime.IsZero() {
		t.Error("lastUpdateTimeUtc not read")
	}
	lr, _ := mde.DecodeMachineAction(fixture(t, "docs/machineaction-liveresponse.json"))
	if len(lr.Commands) != 2 || lr.Commands[1].Command.Type != "GetFile" || lr.Commands[1].Command.Params[0].Key != "Path" {
		t.Errorf("live response commands: %+v", lr.Commands)
	}
	list := objects(t, "docs/machineactions-list.json")
	q, _ := mde.DecodeMachineAction(list[2])
	if q.RelatedFileInfo == nil || q.RelatedFileInfo.FileIdentifierType != "Sha1" {
		t.Errorf("related file: %+v", q.RelatedFileInfo)
	}
	c, _ := mde.DecodeMachineAction(fixture(t, "observed/cancel_machine_action.json"))
	if c.RelatedFileInfo != nil || len(c.Commands) != 1 || c.Commands[0].Command.Type != "PutFile" {
		t.Errorf("synthetic shapes: %+v", c)
	}
	for _, raw := range objects(t, "peers/elastic-integrations/machine_actions.ndjson") {
		a, _ := mde.DecodeMachineAction(raw)
		if a.Status == mdebridge.ActionStatusTimeOut && (a.ErrorHResult == 0 || !mdebridge.ActionFinal(a.Status)) {
			t.Errorf("a TimeOut is final and carries its HResult: %+v", a)
		}
	}
}

func TestIndicatorAndInvestigationFixturesParse(t *testing.T) {
	for _, f := range []string{"docs/indicator-resource.json", "docs/indicators-list.json", "docs/indicators-list-filter-action.json", "observed/get_indicators.json"} {
		for _, raw := range objects(t, f) {
			in, err := mde.DecodeIndicator(raw)
			if err != nil || in.IndicatorValue == "" || in.IndicatorType == "" || in.CreationTime.IsZero() {
				t.Errorf("%s: %v %+v", f, err, in)
			}
		}
	}
	in, _ := mde.DecodeIndicator(fixture(t, "docs/indicator-resource.json"))
	if len(in.RBACGroupNames) != 1 || in.ID != "994" {
		t.Errorf("indicator resource: %+v", in)
	}
	for _, f := range []string{"docs/investigation-resource.json", "docs/investigations-list.json", "observed/get_investigation.json", "observed/start_investigation.json"} {
		for _, raw := range objects(t, f) {
			inv, err := mde.DecodeInvestigation(raw)
			if err != nil || inv.ID == "" || inv.State == "" || inv.StartTime.IsZero() {
				t.Errorf("%s: %v %+v", f, err, inv)
			}
		}
	}
}

// The docs show getPackageUri's value wrapped in quotes; the client strips them.
func TestPackageURIQuotesStripped(t *testing.T) {
	body := fixture(t, "docs/machineaction-getpackageuri.json")
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	link, err := c.GetPackageURI(t.Context(), "5382f7ea-7557-4ab7-9782-d50480024a4e")
	if err != nil || !strings.HasPrefix(link, "https://userrequests-us.securitycenter.windows.com:443/safedownload/") || strings.ContainsRune(link, '"') {
		t.Errorf("link %q, %v", link, err)
	}
	body = fixture(t, "docs/machineaction-liveresponse-resultlink.json")
	link, err = c.GetLiveResponseResultLink(t.Context(), "x", 0)
	if err != nil || !strings.HasPrefix(link, "https://core.windows.net/") {
		t.Errorf("result link %q, %v", link, err)
	}
}

func TestImportResultsFixture(t *testing.T) {
	body := fixture(t, "docs/indicators-import.json")
	var got []byte
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		w.Write(body)
	}))
	res, err := c.ImportIndicators(t.Context(), []mdebridge.Indicator{
		{IndicatorValue: "220e7d15b011d7fac48f2bd61114db1022197f7f", IndicatorType: "FileSha1", Action: "Alert", Title: "demo", Description: "d"},
		{IndicatorValue: strings.Repeat("22", 32), IndicatorType: "FileSha256", Action: "Alert", Title: "demo2", Description: "d"},
	})
	if err != nil || len(res) != 2 || res[0].ID != "2841" || res[1].Failed || res[1].Type != "FileSha256" {
		t.Fatalf("results %+v, %v", res, err)
	}
	if !bytes.HasPrefix(got, []byte(`{"Indicators":[{`)) || !bytes.Contains(got, []byte(`"indicatorValue":`)) {
		t.Errorf("request body %s", got)
	}
}

func emuClient(t *testing.T, emu *emulatortest.Emu, tok string) *mde.Client {
	t.Helper()
	c, err := mde.New(mde.Options{BaseURL: emu.URL, Tokens: staticToken(tok), HTTPClient: emu.Client, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestActionsAgainstTheEmulator(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(60))
	b := emu.ActionBehaviour()
	b.PendingMs, b.RunMs, b.VisibleAfterMs = 0, 50, 0
	emu.SetActionBehaviour(b)
	c := emuClient(t, emu, emu.AppToken(t))
	ctx := t.Context()
	var id string
	c.ListMachinesFiltered(ctx, "healthStatus eq 'Active' and onboardingStatus eq 'Onboarded' and osPlatform eq 'Windows11'", func(ms []mdebridge.Machine) error {
		id = ms[0].ID
		return nil
	})
	a, err := c.RunAction(ctx, id, mdebridge.ActionIsolate, mde.ActionParams{Comment: "contain", IsolationType: "Selective"})
	if err != nil || a.Type != "Isolate" || a.Scope != "Selective" || a.MachineID != id {
		t.Fatalf("isolate: %v %+v", err, a)
	}
	again, err := c.RunAction(ctx, id, mdebridge.ActionIsolate, mde.ActionParams{Comment: "again"})
	if err != nil || again.ID != a.ID {
		t.Errorf("a duplicate gives the pending action: %v %+v", err, again)
	}
	b.Duplicates = emulator.DuplicatesReject
	emu.SetActionBehaviour(b)
	if _, err := c.RunAction(ctx, id, mdebridge.ActionIsolate, mde.ActionParams{Comment: "again"}); !mde.IsActiveRequest(err) {
		t.Errorf("rejected duplicate: %v", err)
	}
	var found []mdebridge.MachineAction
	err = c.ListMachineActionsFiltered(ctx, "machineId eq "+mde.ODataString(id)+" and type eq 'Isolate'", func(as []mdebridge.MachineAction) error {
		found = append(found, as...)
		return nil
	})
	if err != nil || len(found) == 0 || found[0].ID != a.ID {
		t.Errorf("list: %v %d", err, len(found))
	}
	got, err := c.CancelMachineAction(ctx, a.ID, "never mind")
	if err != nil || got.Status != mdebridge.ActionStatusCancelled || got.CancellationComment != "never mind" {
		t.Errorf("cancel: %v %+v", err, got)
	}
	if _, err := c.GetMachineAction(ctx, "00000000-0000-4000-8000-000000000000"); !errors.Is(err, mdebridge.ErrNotFound) {
		t.Errorf("unknown action: %v", err)
	}
	ms, err := c.FindMachinesByIP(ctx, "127.0.0.1", time.Now())
	if err != nil || len(ms) != 0 {
		t.Errorf("findbyip loopback: %v %d", err, len(ms))
	}
	// A missing permission is named.
	noScan := emuClient(t, emu, emu.Token(t, "Machine.Read.All"))
	_, err = noScan.RunAction(ctx, id, mdebridge.ActionScan, mde.ActionParams{Comment: "x"})
	var pe *mdebridge.PermissionError
	if !errors.As(err, &pe) || pe.Missing[0] != "Machine.Scan" {
		t.Errorf("scan without Machine.Scan: %v", err)
	}

	// Collect a package and download it.
	col, err := c.RunAction(ctx, id, mdebridge.ActionCollect, mde.ActionParams{Comment: "forensics"})
	if err != nil {
		t.Fatal(err)
	}
	// getPackageUri allows 2 calls a minute: wait on the action, then ask once.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got, err := c.GetMachineAction(ctx, col.ID); err == nil && got.Status == mdebridge.ActionStatusSucceeded {
			break
		}
	}
	link, err := c.GetPackageURI(ctx, col.ID)
	if err != nil {
		t.Fatalf("no package link: %v", err)
	}
	var buf bytes.Buffer
	n, err := c.Download(ctx, link, func() (io.Writer, error) { buf.Reset(); return &buf, nil })
	if err != nil || n == 0 || !bytes.HasPrefix(buf.Bytes(), []byte("PK")) {
		t.Fatalf("download: %d %v", n, err)
	}
	_, err = c.Download(ctx, link+"tampered", func() (io.Writer, error) { return io.Discard, nil })
	var de *mde.DownloadError
	if !errors.As(err, &de) || !de.Expired() {
		t.Errorf("tampered link: %v", err)
	}
}

func TestIndicatorsAndEntitiesAgainstTheEmulator(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(300))
	c := emuClient(t, emu, emu.AppToken(t))
	ctx := t.Context()
	var all []mdebridge.Indicator
	if err := c.ListIndicators(ctx, func(p []mdebridge.Indicator) error { all = append(all, p...); return nil }); err != nil || len(all) == 0 {
		t.Fatalf("list: %v %d", err, len(all))
	}
	in, err := c.SubmitIndicator(ctx, mdebridge.Indicator{IndicatorValue: "evil.example", IndicatorType: "DomainName", Action: "Block",
		Title: "t", Description: "d", ExpirationTime: time.Now().Add(24 * time.Hour), Severity: "High"})
	if err != nil || in.ID == "" || in.Severity != "High" || in.ExpirationTime.IsZero() {
		t.Fatalf("submit: %v %+v", err, in)
	}
	_, err = c.SubmitIndicator(ctx, mdebridge.Indicator{IndicatorValue: "10.0.0.1", IndicatorType: "IpAddress", Action: "Block", Title: "t", Description: "d"})
	var ae *mde.APIError
	if !errors.As(err, &ae) || ae.Code != "InvalidIpAddress" {
		t.Errorf("private IP: %v", err)
	}
	if err := c.DeleteIndicator(ctx, in.ID); err != nil {
		t.Errorf("delete: %v", err)
	}
	if err := c.DeleteIndicator(ctx, in.ID); !errors.Is(err, mdebridge.ErrNotFound) {
		t.Errorf("delete again: %v", err)
	}

	var sha1 string
	for _, f := range emu.Tenant().CatalogFiles() {
		if f.Name == "powershell.exe" {
			sha1 = f.SHA1
		}
	}
	if raw, err := c.GetFile(ctx, sha1); err != nil || !bytes.Contains(raw, []byte(sha1)) {
		t.Errorf("file: %v %s", err, raw)
	}
	if raw, err := c.FileStats(ctx, sha1, 48); err != nil || !bytes.Contains(raw, []byte(`"organizationPrevalence"`)) {
		t.Errorf("file stats: %v %s", err, raw)
	}
	if ms, err := c.FileMachines(ctx, sha1); err != nil || len(ms) == 0 {
		t.Errorf("file machines: %v %d", err, len(ms))
	}
	if _, err := c.IPStats(ctx, "8.8.8.8", 0); err != nil {
		t.Errorf("ip stats: %v", err)
	}
	if _, err := c.DomainStats(ctx, "office.com", 0); err != nil {
		t.Errorf("domain stats: %v", err)
	}
	if ms, err := c.DomainMachines(ctx, "office.com"); err != nil || len(ms) == 0 {
		t.Errorf("domain machines: %v %d", err, len(ms))
	}
	if _, err := c.GetFile(ctx, "nothex"); err == nil {
		t.Error("bad hash accepted")
	}
}

func TestDownloadRetriesATruncatedTransfer(t *testing.T) {
	calls := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if r.Header.Get("Authorization") != "" {
			t.Error("a bearer token was sent with a pre-signed link")
		}
		w.Header().Set("Content-Length", "10")
		if calls == 1 {
			io.WriteString(w, "12345")
			return
		}
		io.WriteString(w, "0123456789")
	}))
	defer srv.Close()
	c, err := mde.New(mde.Options{BaseURL: "https://api.securitycenter.microsoft.com", Tokens: staticToken("tok"), HTTPClient: srv.Client(), MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := c.Download(t.Context(), srv.URL+"/x?sig=1", func() (io.Writer, error) { buf.Reset(); return &buf, nil })
	if err != nil || n != 10 || buf.String() != "0123456789" || calls != 2 {
		t.Errorf("got %q (%d) after %d calls: %v", buf.String(), n, calls, err)
	}
}

func FuzzDecodeMachineAction(f *testing.F) {
	f.Add([]byte(`{"id":"a","type":"Isolate","status":"Pending","commands":["PutFile"],"relatedFileInfo":""}`))
	f.Add([]byte(`{"id":"a","lastUpdateTimeUtc":"2018-12-04T12:45:25.4049122Z","errorHResult":"-1","scope":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := mde.DecodeMachineAction(b)
		if err == nil && a.ID == "" {
			t.Error("action without id accepted")
		}
	})
}

func FuzzDecodeIndicator(f *testing.F) {
	f.Add([]byte(`{"id":994,"indicatorValue":"x","rbacGroupNames":"a, b","generateAlert":null}`))
	f.Add([]byte(`{"id":"1","expirationTime":"2020-12-12T00:00:00Z","rbacGroupNames":["g"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := mde.DecodeIndicator(b)
		if err == nil && in.ID == "" {
			t.Error("indicator without id accepted")
		}
	})
}

func TestEntityAlertsAgainstTheEmulator(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(100), emulatortest.WithAlerts(200))
	c := emuClient(t, emu, emu.AppToken(t))
	var user string
	ids := emu.Tenant().AlertsMentioning(emulator.EntityDomain, "nowhere.example")
	if len(ids) != 0 {
		t.Fatalf("alerts mention nowhere.example: %v", ids)
	}
	alerts, err := c.DomainAlerts(t.Context(), "nowhere.example")
	if err != nil || len(alerts) != 0 {
		t.Errorf("domain alerts: %v %d", err, len(alerts))
	}
	// Find a user an alert names and ask for it.
	page, _, err := c.ListAlertsPage(t.Context(), mdebridge.AlertPageQuery{Top: 200, ExpandEvidence: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range page {
		if a.RelatedUser != nil && a.RelatedUser.UserName != "" {
			user = a.RelatedUser.UserName
			break
		}
	}
	if user == "" {
		t.Skip("no alert names a user")
	}
	alerts, err = c.UserAlerts(t.Context(), user)
	if err != nil || len(alerts) == 0 || bytes.Contains(alerts[0], []byte("@odata.context")) {
		t.Errorf("user alerts: %v %d", err, len(alerts))
	}
	if _, err := c.IPAlerts(t.Context(), "not-an-ip"); err == nil {
		t.Error("bad IP accepted")
	}
}
