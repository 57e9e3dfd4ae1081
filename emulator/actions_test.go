package emulator_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

type action struct {
	ID                    string `json:"id"`
	Type                  string `json:"type"`
	Scope                 *string
	Status                string `json:"status"`
	MachineID             string `json:"machineId"`
	Requestor             string `json:"requestor"`
	RequestorComment      string `json:"requestorComment"`
	LastUpdateDateTimeUtc string `json:"lastUpdateDateTimeUtc"`
	ErrorHResult          int64  `json:"errorHResult"`
	CancellationComment   *string
	RelatedFileInfo       *struct{ FileIdentifier string }
	Commands              []struct {
		Index         int    `json:"index"`
		CommandStatus string `json:"commandStatus"`
	} `json:"commands"`
}

// pickMachine returns the id of a machine that matches filter (an OData
// $filter), failing the test when there is none.
func pickMachine(t *testing.T, emu *emulatortest.Emu, tok, filter string) string {
	t.Helper()
	resp, body := emu.Get(t, "/api/machines?$top=1&$filter="+url.QueryEscape(filter), tok)
	var list struct{ Value []struct{ ID string } }
	if resp.StatusCode != 200 || json.Unmarshal(body, &list) != nil || len(list.Value) == 0 {
		t.Fatalf("no machine with %s: %d %s", filter, resp.StatusCode, body)
	}
	return list.Value[0].ID
}

const onlineWindows = "healthStatus eq 'Active' and onboardingStatus eq 'Onboarded' and osPlatform eq 'Windows11'"

func postAction(t *testing.T, emu *emulatortest.Emu, tok, machineID, verb, body string) (int, action, mdeErr) {
	t.Helper()
	resp, data := emu.Do(t, "POST", "/api/machines/"+machineID+"/"+verb, tok, body)
	var a action
	var e mdeErr
	if resp.StatusCode < 300 {
		if err := json.Unmarshal(data, &a); err != nil {
			t.Fatalf("%s: %v: %s", verb, err, data)
		}
	} else {
		e = decodeErr(t, data)
	}
	return resp.StatusCode, a, e
}

func getAction(t *testing.T, emu *emulatortest.Emu, tok, id string) (int, action) {
	t.Helper()
	resp, data := emu.Get(t, "/api/machineactions/"+id, tok)
	var a action
	if resp.StatusCode == 200 {
		json.Unmarshal(data, &a)
	}
	return resp.StatusCode, a
}

func setBehaviour(t *testing.T, emu *emulatortest.Emu, change func(*emulator.ActionBehaviour)) {
	t.Helper()
	b := emu.ActionBehaviour()
	change(&b)
	if err := emu.SetActionBehaviour(b); err != nil {
		t.Fatal(err)
	}
}

// The lifecycle: a fresh id 404s for a moment, then Pending, InProgress,
// Succeeded as the clock moves; isolation shows on the machine's state.
func TestActionLifecycleAndIsolationState(t *testing.T) {
	clk := newClock()
	emu := emulatortest.New(t, emulatortest.WithMachines(50), emulatortest.WithNow(clk.Now))
	tok := emu.AppToken(t)
	id := pickMachine(t, emu, tok, onlineWindows)

	code, a, _ := postAction(t, emu, tok, id, "isolate", `{"Comment":"contain","IsolationType":"Selective"}`)
	if code != 201 || a.Status != "Pending" || a.Type != "Isolate" || *a.Scope != "Selective" || a.RequestorComment != "contain" || a.Requestor != emu.App.ClientID {
		t.Fatalf("isolate: %d %+v", code, a)
	}
	if code, _ := getAction(t, emu, tok, a.ID); code != 404 {
		t.Errorf("a fresh action id answered %d, want 404 for a moment", code)
	}
	clk.Advance(time.Second)
	steps := []struct {
		after time.Duration
		want  string
	}{{0, "Pending"}, {4 * time.Second, "InProgress"}, {15 * time.Second, "Succeeded"}}
	for _, s := range steps {
		clk.Advance(s.after)
		if code, got := getAction(t, emu, tok, a.ID); code != 200 || got.Status != s.want {
			t.Fatalf("after %v more: %d %s, want %s", s.after, code, got.Status, s.want)
		}
	}
	st, _ := emu.MachineResponseState(id)
	if st.Isolation != "Selective" {
		t.Errorf("machine state after isolation: %+v", st)
	}
	code, u, _ := postAction(t, emu, tok, id, "unisolate", `{"Comment":"clean"}`)
	if code != 201 {
		t.Fatalf("unisolate: %d", code)
	}
	clk.Advance(time.Minute)
	if _, got := getAction(t, emu, tok, u.ID); got.Status != "Succeeded" {
		t.Fatalf("unisolate ended %s", got.Status)
	}
	if st, _ := emu.MachineResponseState(id); st.Isolation != "" {
		t.Errorf("still isolated after the release: %+v", st)
	}
}

// A duplicate request gets the pending action back (or, configured so, 400
// ActiveRequestAlreadyExists); concurrent requests make one action.
func TestDuplicateActions(t *testing.T) {
	clk := newClock()
	emu := emulatortest.New(t, emulatortest.WithMachines(50), emulatortest.WithNow(clk.Now))
	tok := emu.AppToken(t)
	id := pickMachine(t, emu, tok, onlineWindows)

	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			code, a, _ := postAction(t, emu, tok, id, "runAntiVirusScan", `{"Comment":"scan","ScanType":"Quick"}`)
			if code != 201 {
				t.Errorf("scan %d: %d", i, code)
			}
			ids[i] = a.ID
		})
	}
	wg.Wait()
	for _, got := range ids {
		if got != ids[0] {
			t.Fatalf("concurrent scans made different actions: %v", ids)
		}
	}
	if n := emu.MachineActionCount(id, "RunAntiVirusScan"); n != 1 {
		t.Errorf("%d scan actions on the machine, want 1", n)
	}
	setBehaviour(t, emu, func(b *emulator.ActionBehaviour) { b.Duplicates = emulator.DuplicatesReject })
	code, _, e := postAction(t, emu, tok, id, "runAntiVirusScan", `{"Comment":"again","ScanType":"Full"}`)
	if code != 400 || e.Error.Code != "ActiveRequestAlreadyExists" {
		t.Errorf("rejecting duplicate: %d %+v", code, e)
	}
	// Once the first is final, a new one may be made.
	clk.Advance(time.Minute)
	if code, a, _ := postAction(t, emu, tok, id, "runAntiVirusScan", `{"Comment":"again","ScanType":"Full"}`); code != 201 || a.ID == ids[0] {
		t.Errorf("scan after the first ended: %d %s", code, a.ID)
	}
}

func TestTimeOutFailureCancel(t *testing.T) {
	clk := newClock()
	emu := emulatortest.New(t, emulatortest.WithMachines(80), emulatortest.WithNow(clk.Now))
	tok := emu.AppToken(t)

	// A machine that is not online never picks the action up.
	offline := pickMachine(t, emu, tok, "healthStatus eq 'Inactive' and osPlatform eq 'Windows10'")
	_, a, _ := postAction(t, emu, tok, offline, "runAntiVirusScan", `{"Comment":"scan","ScanType":"Quick"}`)
	clk.Advance(71 * time.Hour)
	tok = emu.AppToken(t) // the clock passed the token's lifetime
	if _, got := getAction(t, emu, tok, a.ID); got.Status != "Pending" {
		t.Fatalf("offline machine after 71h: %s", got.Status)
	}
	clk.Advance(2 * time.Hour)
	tok = emu.AppToken(t)
	if _, got := getAction(t, emu, tok, a.ID); got.Status != "TimeOut" || got.ErrorHResult != -2145844840 {
		t.Fatalf("offline machine after 73h: %+v", got)
	}

	online := pickMachine(t, emu, tok, onlineWindows)
	setBehaviour(t, emu, func(b *emulator.ActionBehaviour) { b.FailureRate = 1 })
	_, f, _ := postAction(t, emu, tok, online, "collectInvestigationPackage", `{"Comment":"c"}`)
	clk.Advance(time.Minute)
	if _, got := getAction(t, emu, tok, f.ID); got.Status != "Failed" || got.ErrorHResult == 0 {
		t.Fatalf("failure injection: %+v", got)
	}

	setBehaviour(t, emu, func(b *emulator.ActionBehaviour) { b.FailureRate = 0 })
	_, c, _ := postAction(t, emu, tok, online, "restrictCodeExecution", `{"Comment":"r"}`)
	clk.Advance(2 * time.Second)
	resp, body := emu.Do(t, "POST", "/api/machineactions/"+c.ID+"/cancel", tok, `{"Comment":"not needed"}`)
	var got action
	json.Unmarshal(body, &got)
	if resp.StatusCode != 200 || got.Status != "Cancelled" || got.CancellationComment == nil || *got.CancellationComment != "not needed" {
		t.Fatalf("cancel: %d %s", resp.StatusCode, body)
	}
	clk.Advance(time.Minute)
	if _, got := getAction(t, emu, tok, c.ID); got.Status != "Cancelled" {
		t.Errorf("a cancelled action became %s", got.Status)
	}
	if st, _ := emu.MachineResponseState(online); st.CodeExecutionRestricted {
		t.Error("a cancelled restriction took effect")
	}
	resp, body = emu.Do(t, "POST", "/api/machineactions/"+c.ID+"/cancel", tok, `{"Comment":"again"}`)
	if resp.StatusCode != 400 {
		t.Errorf("cancelling a final action: %d %s", resp.StatusCode, body)
	}

	// The control API forces an outcome.
	_, k, _ := postAction(t, emu, tok, online, "offboard", `{"Comment":"bye"}`)
	if err := emu.CompleteAction(k.ID, "TimeOut"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if _, got := getAction(t, emu, tok, k.ID); got.Status != "TimeOut" {
		t.Errorf("forced TimeOut: %s", got.Status)
	}
}

func TestActionBadInputsAndPermissions(t *testing.T) {
	clk := newClock()
	emu := emulatortest.New(t, emulatortest.WithMachines(60), emulatortest.WithNow(clk.Now))
	tok := emu.AppToken(t)
	win := pickMachine(t, emu, tok, onlineWindows)
	linux := pickMachine(t, emu, tok, "osPlatform eq 'Ubuntu'")
	tests := []struct {
		name, machine, verb, body, tok string
		status                         int
		code                           string
	}{
		{"no comment", win, "isolate", `{"IsolationType":"Full"}`, tok, 400, "MissingRequiredParameter"},
		{"empty comment", win, "unisolate", `{"Comment":" "}`, tok, 400, "MissingRequiredParameter"},
		{"wrong casing", win, "isolate", `{"comment":"x"}`, tok, 400, "InvalidRequestBody"},
		{"bad isolation type", win, "isolate", `{"Comment":"x","IsolationType":"Partial"}`, tok, 400, "InvalidInput"},
		{"bad scan type", win, "runAntiVirusScan", `{"Comment":"x","ScanType":"Deep"}`, tok, 400, "InvalidInput"},
		{"bad sha1", win, "StopAndQuarantineFile", `{"Comment":"x","Sha1":"abc"}`, tok, 400, "InvalidHashValue"},
		{"offboard linux", linux, "offboard", `{"Comment":"x"}`, tok, 400, "OsPlatformNotSupported"},
		{"selective on linux", linux, "isolate", `{"Comment":"x","IsolationType":"Selective"}`, tok, 400, "OsPlatformNotSupported"},
		{"unknown machine", "no-such-machine", "isolate", `{"Comment":"x"}`, tok, 404, "ResourceNotFound"},
		{"no isolate permission", win, "isolate", `{"Comment":"x"}`, emu.Token(t, "Machine.Scan"), 403, "Forbidden"},
		{"quarantine needs machine read", win, "StopAndQuarantineFile", `{"Comment":"x","Sha1":"87662bc3d60e4200ceaf7aae249d1c343f4b83c9"}`, emu.Token(t, "Machine.StopAndQuarantine"), 403, "Forbidden"},
		{"unknown script", win, "runliveresponse", `{"Comment":"x","Commands":[{"type":"RunScript","params":[{"key":"ScriptName","value":"evil.ps1"}]}]}`, tok, 400, "InvalidInput"},
		{"bad command", win, "runliveresponse", `{"Comment":"x","Commands":[{"type":"Format","params":[]}]}`, tok, 400, "InvalidInput"},
	}
	for _, tt := range tests {
		code, _, e := postAction(t, emu, tt.tok, tt.machine, tt.verb, tt.body)
		if code != tt.status || e.Error.Code != tt.code {
			t.Errorf("%s: %d %+v, want %d %s", tt.name, code, e.Error, tt.status, tt.code)
		}
	}
	if code, _, _ := postAction(t, emu, tok, win, "StopAndQuarantineFile", `{"Comment":"x","Sha1":"87662BC3D60E4200CEAF7AAE249D1C343F4B83C9"}`); code != 201 {
		t.Errorf("quarantine with every permission: %d", code)
	}

	resp, body := emu.Get(t, "/api/machineactions/556b3952acb0bff29816d267822305781cc183ec", tok)
	if e := decodeErr(t, body); resp.StatusCode != 400 || e.Error.Code != "BadRequest" ||
		e.Error.Message != "The key value (556b3952acb0bff29816d267822305781cc183ec) from request is not valid. The key value should be format of type 'Edm.Guid'." {
		t.Errorf("non-GUID id: %d %s", resp.StatusCode, body)
	}
	_, iso, _ := postAction(t, emu, tok, win, "isolate", `{"Comment":"x"}`)
	clk.Advance(time.Minute)
	resp, body = emu.Get(t, "/api/machineactions/"+iso.ID+"/getPackageUri", tok)
	if e := decodeErr(t, body); resp.StatusCode != 400 || e.Error.Message != "Provided Guid is not a valid id for a CollectInvestigationPackage action" {
		t.Errorf("package of an isolation: %d %s", resp.StatusCode, body)
	}
}

// An investigation package is downloadable once collected, through a
// signed link that expires; getPackageUri allows 2 calls a minute.
func TestInvestigationPackage(t *testing.T) {
	clk := newClock()
	emu := emulatortest.New(t, emulatortest.WithMachines(50), emulatortest.WithNow(clk.Now))
	tok := emu.AppToken(t)
	id := pickMachine(t, emu, tok, onlineWindows)
	_, a, _ := postAction(t, emu, tok, id, "collectInvestigationPackage", `{"Comment":"forensics"}`)
	if code, _, e := postAction(t, emu, tok, id, "collectInvestigationPackage", `{"Comment":"again"}`); code != 400 || e.Error.Code != "ActiveRequestAlreadyExists" {
		t.Errorf("second collection while one runs: %d %+v", code, e)
	}
	clk.Advance(2 * time.Second)
	if resp, _ := emu.Get(t, "/api/machineactions/"+a.ID+"/getPackageUri", tok); resp.StatusCode != 404 {
		t.Errorf("package before completion: %d", resp.StatusCode)
	}
	clk.Advance(time.Minute)
	resp, body := emu.Get(t, "/api/machineactions/"+a.ID+"/GetPackageUri", tok)
	var link struct {
		Context string `json:"@odata.context"`
		Value   string `json:"value"`
	}
	if json.Unmarshal(body, &link); resp.StatusCode != 200 || !strings.HasSuffix(link.Context, "#Edm.String") || !strings.Contains(link.Value, "/safedownload/WDATP_Investigation_Package.zip?token=") {
		t.Fatalf("getPackageUri: %d %s", resp.StatusCode, body)
	}
	emu.Get(t, "/api/machineactions/"+a.ID+"/getPackageUri", tok)
	if resp, _ := emu.Get(t, "/api/machineactions/"+a.ID+"/getPackageUri", tok); resp.StatusCode != 429 {
		t.Errorf("third getPackageUri in a minute: %d, want 429", resp.StatusCode)
	}
	zipBytes := download(t, emu, link.Value, 200)
	zr, err := zip.NewReader(bytes.NewReader(zipBytes), int64(len(zipBytes)))
	if err != nil || len(zr.File) < 4 {
		t.Fatalf("package is not a zip with the package folders: %v", err)
	}
	download(t, emu, link.Value+"x", 403)
	clk.Advance(11 * time.Minute)
	download(t, emu, link.Value, 403)
}

func download(t *testing.T, emu *emulatortest.Emu, link string, want int) []byte {
	t.Helper()
	resp, err := emu.Client.Get(strings.Replace(link, "https://"+hostOf(link), emu.URL, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d %s, want %d", link, resp.StatusCode, data, want)
	}
	return data
}

func hostOf(link string) string {
	u, _ := url.Parse(link)
	return u.Host
}

func TestLiveResponse(t *testing.T) {
	clk := newClock()
	emu := emulatortest.New(t, emulatortest.WithMachines(50), emulatortest.WithNow(clk.Now))
	tok := emu.AppToken(t)
	id := pickMachine(t, emu, tok, onlineWindows)
	body := `{"Commands":[{"type":"RunScript","params":[{"key":"ScriptName","value":"minidump.ps1"},{"key":"Args","value":"OfficeClickToRun"}]},
		{"type":"GetFile","params":[{"key":"Path","value":"C:\\windows\\TEMP\\OfficeClickToRun.dmp.zip"}]},
		{"type":"PutFile","params":[{"key":"FileName","value":"cleanup-tool.exe"}]}],"Comment":"Testing Live Response API"}`
	code, a, _ := postAction(t, emu, tok, id, "runliveresponse", body)
	if code != 201 || a.Type != "LiveResponse" || len(a.Commands) != 3 || a.Commands[0].CommandStatus != "Created" {
		t.Fatalf("runliveresponse: %d %+v", code, a)
	}
	if code, _, e := postAction(t, emu, tok, id, "runliveresponse", body); code != 400 || e.Error.Code != "ActiveRequestAlreadyExists" {
		t.Errorf("second session on the machine: %d %+v", code, e)
	}
	clk.Advance(11 * time.Second) // picked up at 5s, commands take 5s each
	if _, got := getAction(t, emu, tok, a.ID); got.Status != "InProgress" || got.Commands[0].CommandStatus != "Completed" || got.Commands[1].CommandStatus != "InProgress" {
		t.Fatalf("mid-session: %+v", got)
	}
	link := func(i int) (int, string) {
		resp, body := emu.Get(t, fmt.Sprintf("/api/machineactions/%s/GetLiveResponseResultDownloadLink(index=%d)", a.ID, i), tok)
		var v struct{ Value string }
		json.Unmarshal(body, &v)
		return resp.StatusCode, v.Value
	}
	if code, _ := link(1); code != 404 {
		t.Errorf("link of a running command: %d", code)
	}
	clk.Advance(time.Minute)
	code, l0 := link(0)
	if code != 200 || !strings.Contains(l0, "CustomPlaybookCommandOutput") || !strings.Contains(l0, "&sig=") {
		t.Fatalf("result link: %d %s", code, l0)
	}
	var transcript struct {
		ScriptName   string `json:"script_name"`
		ExitCode     int    `json:"exit_code"`
		ScriptOutput string `json:"script_output"`
	}
	if err := json.Unmarshal(download(t, emu, l0, 200), &transcript); err != nil || transcript.ScriptName != "minidump.ps1" || !strings.Contains(transcript.ScriptOutput, "OfficeClickToRun") {
		t.Errorf("transcript: %v %+v", err, transcript)
	}
	_, l1 := link(1)
	if data := download(t, emu, l1, 200); !bytes.HasPrefix(data, []byte("PK")) {
		t.Error("GetFile of a .zip path did not give a zip")
	}
	if code, _ := link(2); code != 400 {
		t.Errorf("link of a PutFile: %d", code)
	}
	if code, _ := link(3); code != 400 {
		t.Errorf("link of command 3 of 3: %d", code)
	}
	clk.Advance(31 * time.Minute)
	if data := download(t, emu, l0, 403); !bytes.Contains(data, []byte("Signature not valid in the specified time frame")) {
		t.Errorf("expired link: %s", data)
	}
}

// At most 25 live response sessions run at once in a tenant.
func TestLiveResponseSessionLimit(t *testing.T) {
	clk := newClock()
	emu := emulatortest.New(t, emulatortest.WithMachines(400), emulatortest.WithNow(clk.Now), emulatortest.WithRateLimits(emulator.RateLimits{Off: true}))
	tok := emu.AppToken(t)
	resp, body := emu.Get(t, "/api/machines?$top=30&$filter="+url.QueryEscape("healthStatus eq 'Active' and onboardingStatus eq 'Onboarded'"), tok)
	var list struct{ Value []struct{ ID string } }
	if json.Unmarshal(body, &list); resp.StatusCode != 200 || len(list.Value) < 26 {
		t.Fatalf("need 26 online machines: %d", len(list.Value))
	}
	cmd := `{"Comment":"x","Commands":[{"type":"RunScript","params":[{"key":"ScriptName","value":"triage.ps1"}]}]}`
	for i, m := range list.Value[:26] {
		code, _, _ := postAction(t, emu, tok, m.ID, "runliveresponse", cmd)
		want := 201
		if i == 25 {
			want = 429
		}
		if code != want {
			t.Fatalf("session %d: %d, want %d", i+1, code, want)
		}
	}
}

func TestActionListOData(t *testing.T) {
	clk := newClock()
	emu := emulatortest.New(t, emulatortest.WithMachines(300), emulatortest.WithNow(clk.Now))
	tok := emu.AppToken(t)
	id := pickMachine(t, emu, tok, onlineWindows)
	_, a, _ := postAction(t, emu, tok, id, "isolate", `{"Comment":"x"}`)
	list := func(q string) []action {
		t.Helper()
		resp, body := emu.Get(t, "/api/machineactions?"+q, tok)
		var l struct{ Value []action }
		if resp.StatusCode != 200 || json.Unmarshal(body, &l) != nil {
			t.Fatalf("list %s: %d %s", q, resp.StatusCode, body)
		}
		return l.Value
	}
	f := url.QueryEscape(fmt.Sprintf("machineId eq '%s' and type eq 'Isolate' and (status eq 'Pending' or status eq 'InProgress')", id))
	if got := list("$filter=" + f); len(got) != 0 {
		t.Errorf("a fresh action is listed: %+v", got)
	}
	clk.Advance(2 * time.Second)
	if got := list("$filter=" + f); len(got) != 1 || got[0].ID != a.ID {
		t.Errorf("pending isolation by filter: %+v", got)
	}
	all := list("")
	if len(all) < 30 {
		t.Errorf("the generated history has %d actions", len(all))
	}
	since := url.QueryEscape("lastUpdateDateTimeUtc ge " + clk.Now().Add(-time.Minute).Format(time.RFC3339))
	if got := list("$filter=" + since + "&$orderby=lastUpdateDateTimeUtc+asc"); len(got) != 1 {
		t.Errorf("changed in the last minute: %d actions", len(got))
	}
	if got := list("$top=5&$skip=3"); len(got) != 5 || got[0].ID != all[3].ID {
		t.Errorf("$top/$skip: %d", len(got))
	}
	if resp, _ := emu.Get(t, "/api/machineactions?$filter="+url.QueryEscape("bogus eq 1"), tok); resp.StatusCode != 400 {
		t.Errorf("unknown property: %d", resp.StatusCode)
	}
}

func TestActionBehaviourControlAPI(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(5))
	resp, body := emu.Do(t, "PUT", "/_emulator/machineactions/behaviour", "", `{"pendingMs":10,"runMs":20}`)
	var b emulator.ActionBehaviour
	if json.Unmarshal(body, &b); resp.StatusCode != 200 || b.PendingMs != 10 || b.RunMs != 20 || b.VisibleAfterMs != 1000 {
		t.Fatalf("PUT behaviour: %d %s", resp.StatusCode, body)
	}
	for _, bad := range []string{`{"pendingMs":-1}`, `{"failureRate":2}`, `{"duplicates":"sometimes"}`, `{"pendingSeconds":1}`} {
		if resp, body := emu.Do(t, "PUT", "/_emulator/machineactions/behaviour", "", bad); resp.StatusCode != 400 {
			t.Errorf("%s: %d %s", bad, resp.StatusCode, body)
		}
	}
	if resp, _ := emu.Get(t, "/_emulator/response", ""); resp.StatusCode != 200 {
		t.Errorf("summary: %d", resp.StatusCode)
	}
	if resp, _ := emu.Do(t, "POST", "/_emulator/machineactions/00000000-0000-4000-8000-000000000000/complete", "", `{"status":"Succeeded"}`); resp.StatusCode != 404 {
		t.Errorf("completing an unknown action: %d", resp.StatusCode)
	}
	if resp, _ := emu.Do(t, "POST", "/_emulator/liveresponse/library", "", `{"name":"mine.ps1"}`); resp.StatusCode != http.StatusCreated {
		t.Errorf("library: %d", resp.StatusCode)
	}
}
