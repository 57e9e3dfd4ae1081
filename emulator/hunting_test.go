package emulator_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

type huntingResponse struct {
	Stats   map[string]any `json:"Stats"`
	Schema  []struct{ Name, Type string }
	Results []map[string]any
}

func hunt(t *testing.T, emu *emulatortest.Emu, tok, query string) (*http.Response, []byte) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"Query": query})
	return emu.Do(t, "POST", "/api/advancedqueries/run", tok, string(body))
}

func mustHunt(t *testing.T, emu *emulatortest.Emu, tok, query string) huntingResponse {
	t.Helper()
	resp, body := hunt(t, emu, tok, query)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", query, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	var r huntingResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return r
}

var huntNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func huntingEmu(t *testing.T, machines int, opts ...emulatortest.Option) *emulatortest.Emu {
	return emulatortest.New(t, append([]emulatortest.Option{emulatortest.WithMachines(machines),
		emulatortest.WithNow(func() time.Time { return huntNow })}, opts...)...)
}

// TestHuntingShapeMatchesDocs runs the documentation's request and checks
// the answer has the documented shape: PascalCase Schema and Results, the
// row keys the schema's names, timestamps with seven fractional digits.
func TestHuntingShapeMatchesDocs(t *testing.T) {
	emu := huntingEmu(t, 300)
	req, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", "docs", "requests", "hunting-run.request.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", "docs", "hunting-run.json"))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := emu.Do(t, "POST", "/api/advancedqueries/run", emu.AppToken(t), string(req))
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var got, want huntingResponse
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(doc, &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want.Schema, got.Schema); diff != "" {
		t.Errorf("schema (-docs +emulator):\n%s", diff)
	}
	var top map[string]json.RawMessage
	json.Unmarshal(body, &top)
	if len(top) != 2 || top["Schema"] == nil || top["Results"] == nil {
		t.Errorf("top-level keys %v, want Schema and Results", slices.Collect(mapKeys(top)))
	}
	if len(got.Results) == 0 || len(got.Results) > 2 {
		t.Fatalf("%d results for the doc query (limit 2); the tenant should have PowerShell touching AppData", len(got.Results))
	}
	for _, r := range got.Results {
		if len(r) != len(got.Schema) {
			t.Errorf("row %v has other keys than the schema", r)
		}
		ts, _ := r["Timestamp"].(string)
		if _, err := time.Parse("2006-01-02T15:04:05.0000000Z", ts); err != nil {
			t.Errorf("Timestamp %q: %v", ts, err)
		}
		if !strings.EqualFold(r["InitiatingProcessFileName"].(string), "powershell.exe") {
			t.Errorf("row %v does not match the query", r)
		}
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestHuntingErrors(t *testing.T) {
	emu := huntingEmu(t, 20)
	tok := emu.AppToken(t)
	observed, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", "observed", "run_query.json"))
	if err != nil {
		t.Fatal(err)
	}
	var live mdeErr
	json.Unmarshal(observed, &live)
	for _, tt := range []struct {
		body          string
		status        int
		code, message string
	}{
		{`{"Query":"DeviceInfo | wher DeviceId == 1"}`, 400, "BadRequest", live.Error.Message},
		{`{"Query":"DeviceInfo | where DeviceName == 'x"}`, 400, "BadRequest", live.Error.Message},
		{`{"Query":"  "}`, 400, "BadRequest", live.Error.Message},
		{`{"Query":"DeviceInfo | where Nope == 1"}`, 400, "BadRequest", "'where' operator: Failed to resolve scalar expression named 'Nope'"},
		{`{"Query":"NoSuchTable | take 1"}`, 400, "BadRequest", "Failed to resolve table or column expression named 'NoSuchTable'"},
		{`{"query":"DeviceInfo | take 1"}`, 400, "InvalidRequestBody", "Request body is incorrect"},
		{`{}`, 400, "MissingRequiredParameter", "Parameter Query is missing."},
		{`not json`, 400, "InvalidRequestBody", "Request body is incorrect"},
	} {
		resp, body := emu.Do(t, "POST", "/api/advancedqueries/run", tok, tt.body)
		e := decodeErr(t, body)
		if resp.StatusCode != tt.status || e.Error.Code != tt.code || e.Error.Message != tt.message {
			t.Errorf("%s: %d %+v, want %d %s %q", tt.body, resp.StatusCode, e.Error, tt.status, tt.code, tt.message)
		}
	}
	// Without the permission: 403 naming it.
	resp, body := hunt(t, emu, emu.Token(t, "Machine.Read.All"), "DeviceInfo | take 1")
	if e := decodeErr(t, body); resp.StatusCode != 403 || !strings.Contains(e.Error.Message, "(AdvancedQuery.Read.All)") {
		t.Errorf("without AdvancedQuery.Read.All: %d %+v", resp.StatusCode, e.Error)
	}
}

func TestHuntingRateLimit(t *testing.T) {
	clk := newClock()
	emu := emulatortest.New(t, emulatortest.WithMachines(3), emulatortest.WithNow(clk.Now))
	tok := emu.AppToken(t)
	for i := range 45 {
		if resp, body := hunt(t, emu, tok, "DeviceInfo | take 1"); resp.StatusCode != 200 {
			t.Fatalf("call %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
	resp, body := hunt(t, emu, tok, "DeviceInfo | take 1")
	e := decodeErr(t, body)
	if resp.StatusCode != 429 || e.Error.Code != "429" || e.Error.Message != "API calls quota exceeded! maximum allowed 45 per 00:01:00" {
		t.Errorf("46th call: %d %+v", resp.StatusCode, e.Error)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
}

func TestHuntingCPUQuota(t *testing.T) {
	clk := newClock()
	emu := emulatortest.New(t, emulatortest.WithMachines(3), emulatortest.WithNow(clk.Now))
	tok := emu.AppToken(t)
	mustHunt(t, emu, tok, "DeviceInfo | take 1")
	emu.SpendHuntingCPU(10 * time.Minute)
	resp, body := hunt(t, emu, tok, "DeviceInfo | take 1")
	e := decodeErr(t, body)
	if resp.StatusCode != 429 || e.Error.Code != "429" || !strings.Contains(e.Error.Message, "CPU") ||
		e.Error.Message != "Query CPU quota exceeded! maximum allowed 00:10:00 of running time per 01:00:00" {
		t.Fatalf("with the hour's running time spent: %d %+v", resp.StatusCode, e.Error)
	}
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra != 3600 {
		t.Errorf("Retry-After %q, want 3600 (when the spent time leaves the window)", resp.Header.Get("Retry-After"))
	}
	clk.Advance(time.Hour + time.Second)
	mustHunt(t, emu, tok, "DeviceInfo | take 1")

	// The daily quota: 3 hours.
	for range 18 {
		emu.SpendHuntingCPU(10 * time.Minute)
		clk.Advance(time.Hour + time.Second)
	}
	tok = emu.AppToken(t) // the old one expired meanwhile
	resp, body = hunt(t, emu, tok, "DeviceInfo | take 1")
	if e := decodeErr(t, body); resp.StatusCode != 429 || !strings.Contains(e.Error.Message, "per 1.00:00:00") {
		t.Errorf("with the day's running time spent: %d %+v", resp.StatusCode, e.Error)
	}
	emu.ResetHuntingCPU()
	mustHunt(t, emu, tok, "DeviceInfo | take 1")

	// Through the control API.
	if resp, _ := emu.Do(t, "DELETE", "/_emulator/hunting/cpu", "", ""); resp.StatusCode != 204 {
		t.Errorf("DELETE /_emulator/hunting/cpu: %d", resp.StatusCode)
	}
	resp, body = emu.Do(t, "PUT", "/_emulator/hunting", "", `{"cpuPerHour":"1ns"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("PUT /_emulator/hunting: %d %s", resp.StatusCode, body)
	}
	mustHunt(t, emu, tok, "DeviceInfo | take 1") // this one spends it
	if resp, _ := hunt(t, emu, tok, "DeviceInfo | take 1"); resp.StatusCode != 429 {
		t.Errorf("after a 1ns hourly quota was spent: %d", resp.StatusCode)
	}
	if resp, _ := emu.Do(t, "POST", "/_emulator/hunting/cpu", "", `{"spend":"-1m"}`); resp.StatusCode != 400 {
		t.Errorf("spending a negative time: %d", resp.StatusCode)
	}
	if resp, _ := emu.Do(t, "PUT", "/_emulator/hunting", "", `{"cpuPerHour":"10x"}`); resp.StatusCode != 400 {
		t.Errorf("a bad duration: %d", resp.StatusCode)
	}
}

func TestHuntingRowCapAndResultSize(t *testing.T) {
	emu := huntingEmu(t, 50)
	tok := emu.AppToken(t)
	if r := mustHunt(t, emu, tok, "DeviceInfo | summarize arg_max(Timestamp, *) by DeviceId"); len(r.Results) < 40 {
		t.Fatalf("%d devices", len(r.Results))
	}
	if err := emu.SetHuntingLimits(emulator.HuntingLimits{MaxRows: ptr(7)}); err != nil {
		t.Fatal(err)
	}
	if r := mustHunt(t, emu, tok, "DeviceInfo | summarize arg_max(Timestamp, *) by DeviceId"); len(r.Results) != 7 {
		t.Errorf("%d rows under a cap of 7", len(r.Results))
	}
	if err := emu.SetHuntingLimits(emulator.HuntingLimits{MaxResultBytes: ptr(2000)}); err != nil {
		t.Fatal(err)
	}
	resp, body := hunt(t, emu, tok, "DeviceInfo")
	e := decodeErr(t, body)
	if resp.StatusCode != 400 || e.Error.Code != "BadRequest" ||
		e.Error.Message != "Query execution has exceeded the allowed result size. Optimize your query by limiting the number of results and try again." {
		t.Errorf("over the result size: %d %+v", resp.StatusCode, e.Error)
	}
	var settings emulator.HuntingSettings
	_, body = emu.Get(t, "/_emulator/hunting", "")
	json.Unmarshal(body, &settings)
	if settings.MaxRows != 7 || settings.MaxResultBytes != 2000 || settings.CPUPerHour != "10m0s" || settings.Queries < 3 ||
		!slices.Contains(settings.Tables, "DeviceLogonEvents") {
		t.Errorf("settings %+v", settings)
	}
}

func ptr[T any](v T) *T { return &v }

func TestAdvancedHuntingTwinHasStats(t *testing.T) {
	emu := huntingEmu(t, 20)
	tok := emu.Token(t, "AdvancedQuery.Read.All")
	resp, body := emu.Do(t, "POST", "/api/advancedhunting/run", tok, `{"Query":"DeviceProcessEvents | project Timestamp, FileName, InitiatingProcessFileName | take 3"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	// The same top-level shape as the capture.
	capture, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", "observed", "query_advanced_hunting.json"))
	if err != nil {
		t.Fatal(err)
	}
	live, got := shape{}, shape{}
	var lv, gv any
	json.Unmarshal(capture, &lv)
	json.Unmarshal(body, &gv)
	live.learn("", lv)
	got.learn("", gv)
	for path, types := range live {
		if strings.HasPrefix(path, "Results") {
			continue
		}
		for typ := range types {
			if typ != "null" && !got[path][typ] {
				t.Errorf("%s: the capture has %s, the emulator %v", path, typ, keys(got[path]))
			}
		}
	}
	if resp, _ := emu.Do(t, "POST", "/api/advancedhunting/run", emu.Token(t, "Machine.Read.All"), `{"Query":"DeviceInfo"}`); resp.StatusCode != 403 {
		t.Errorf("without a hunting permission: %d, want 403", resp.StatusCode)
	}
}

type logonUserJSON struct {
	ID                string  `json:"id"`
	AccountName       string  `json:"accountName"`
	AccountDomain     string  `json:"accountDomain"`
	AccountSid        *string `json:"accountSid"`
	FirstSeen         string  `json:"firstSeen"`
	LastSeen          string  `json:"lastSeen"`
	LogonTypes        string  `json:"logonTypes"`
	IsDomainAdmin     bool    `json:"isDomainAdmin"`
	IsOnlyNetworkUser *bool   `json:"isOnlyNetworkUser"`
}

func TestLogonUsersShapeMatchesLive(t *testing.T) {
	emu := huntingEmu(t, 40, emulatortest.WithRateLimits(emulator.RateLimits{Off: true}))
	tok := emu.Token(t, "User.Read.All")
	capture, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", "observed", "get_machine_logon_users.json"))
	if err != nil {
		t.Fatal(err)
	}
	var live struct{ Value []json.RawMessage }
	json.Unmarshal(capture, &live)
	liveKeys := objectKeys(t, live.Value[0])
	ids := machineIDs(t, emu)
	found := 0
	for _, id := range ids {
		resp, body := emu.Get(t, "/api/machines/"+id+"/logonusers", tok)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		var page struct {
			Context string            `json:"@odata.context"`
			Value   []json.RawMessage `json:"value"`
		}
		json.Unmarshal(body, &page)
		if !strings.HasSuffix(page.Context, "/api/$metadata#Users") || page.Value == nil {
			t.Fatalf("not a #Users collection: %s", body)
		}
		for _, raw := range page.Value {
			found++
			if diff := cmp.Diff(liveKeys, objectKeys(t, raw)); diff != "" {
				t.Fatalf("key order differs from the capture (-live +emulator):\n%s", diff)
			}
			var u logonUserJSON
			json.Unmarshal(raw, &u)
			if u.ID != u.AccountDomain+`\`+u.AccountName || u.LogonTypes == "" {
				t.Errorf("user %s", raw)
			}
			for _, ts := range []string{u.FirstSeen, u.LastSeen} {
				if _, err := time.Parse(time.RFC3339, ts); err != nil || strings.Contains(ts, ".") {
					t.Errorf("timestamp %q is not whole seconds with a Z", ts)
				}
			}
		}
	}
	if found == 0 {
		t.Fatal("no machine has logon users")
	}
	resp, body := emu.Get(t, "/api/machines/nosuchmachine/logonusers", tok)
	if e := decodeErr(t, body); resp.StatusCode != 404 || e.Error.Code != "ResourceNotFound" {
		t.Errorf("unknown machine: %d %+v", resp.StatusCode, e.Error)
	}
	if resp, _ := emu.Get(t, "/api/machines/"+ids[0]+"/logonusers", emu.Token(t, "Machine.Read.All")); resp.StatusCode != 403 {
		t.Errorf("without User.Read.All: %d", resp.StatusCode)
	}
}

func machineIDs(t *testing.T, emu *emulatortest.Emu) []string {
	t.Helper()
	_, body := emu.Get(t, "/api/machines?$select=id", emu.AppToken(t))
	var list struct{ Value []struct{ ID string } }
	json.Unmarshal(body, &list)
	var ids []string
	for _, m := range list.Value {
		ids = append(ids, m.ID)
	}
	return ids
}

// TestLogonUsersAgreeEverywhere holds the per-machine API, the hunting
// table and the tenant's counts to one story: the pairs the logonusers
// endpoint lists are exactly those DeviceLogonEvents summarises to, with
// the same last logon, and their number is what GET /_emulator/tenant says.
func TestLogonUsersAgreeEverywhere(t *testing.T) {
	emu := huntingEmu(t, 150, emulatortest.WithRateLimits(emulator.RateLimits{Off: true}))
	tok := emu.AppToken(t)
	type pair struct{ machine, user string }
	api := map[pair]string{}
	accounts := map[string]bool{}
	for _, id := range machineIDs(t, emu) {
		resp, body := emu.Get(t, "/api/machines/"+id+"/logonusers", tok)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		var page struct{ Value []logonUserJSON }
		json.Unmarshal(body, &page)
		for _, u := range page.Value {
			api[pair{id, strings.ToLower(u.ID)}] = u.LastSeen
			accounts[strings.ToLower(u.ID)] = true
		}
	}
	r := mustHunt(t, emu, tok, `DeviceLogonEvents
		| where Timestamp > ago(30d) and ActionType == "LogonSuccess"
		| summarize LastSeen = max(Timestamp), Types = make_set(LogonType) by DeviceId, AccountDomain, AccountName`)
	hunted := map[pair]string{}
	for _, row := range r.Results {
		ts, _ := time.Parse(time.RFC3339Nano, row["LastSeen"].(string))
		hunted[pair{row["DeviceId"].(string), strings.ToLower(row["AccountDomain"].(string) + `\` + row["AccountName"].(string))}] = ts.Format(time.RFC3339)
	}
	if diff := cmp.Diff(api, hunted); diff != "" {
		t.Errorf("logonusers vs DeviceLogonEvents (-api +hunting):\n%s", diff)
	}
	_, body := emu.Get(t, "/_emulator/tenant", "")
	var tenant struct{ Counts map[string]int }
	json.Unmarshal(body, &tenant)
	if tenant.Counts["machineLogonUsers"] != len(api) || tenant.Counts["logonUsers"] != len(accounts) || len(api) == 0 {
		t.Errorf("tenant counts %v; the API lists %d pairs of %d accounts", tenant.Counts, len(api), len(accounts))
	}
	// A helpdesk or admin account shows on several machines: the case where
	// keying the edge by user alone loses machines.
	byUser := map[string]int{}
	for p := range api {
		byUser[p.user]++
	}
	if slices.Max(slices.Collect(mapValues(byUser))) < 3 {
		t.Errorf("no account logs on to three machines or more: %v", byUser)
	}
}

func mapValues[K comparable, V any](m map[K]V) func(func(V) bool) {
	return func(yield func(V) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

// TestHuntingIsDeterministic: the same tenant and clock give the same rows;
// another seed gives others.
func TestHuntingIsDeterministic(t *testing.T) {
	q := `DeviceNetworkEvents | where Timestamp > ago(7d) | summarize count() by DeviceId, RemoteUrl | order by count_ desc, DeviceId asc | take 20`
	run := func(seed int64) string {
		emu := huntingEmu(t, 60, emulatortest.WithSeed(seed))
		_, body := hunt(t, emu, emu.AppToken(t), q)
		return string(body)
	}
	a, b, c := run(1), run(1), run(2)
	if a != b {
		t.Error("the same seed gave different results")
	}
	if a == c {
		t.Error("another seed gave the same results")
	}
}

// TestHuntingTablesHaveIncidents: the event tables hold what the hunting
// library looks for.
func TestHuntingTablesHaveIncidents(t *testing.T) {
	emu := huntingEmu(t, 400)
	tok := emu.AppToken(t)
	for _, q := range []string{
		`DeviceProcessEvents | where FileName =~ "schtasks.exe" and ProcessCommandLine has "/create" | take 1`,
		`DeviceProcessEvents | where ProcessCommandLine has "-enc" | take 1`,
		`DeviceProcessEvents | where ProcessCommandLine has_any ("comsvcs.dll", "lsass") | take 1`,
		`DeviceProcessEvents | where FileName =~ "wevtutil.exe" and ProcessCommandLine has "cl" | take 1`,
		`DeviceRegistryEvents | where RegistryKey has @"CurrentVersion\Run" | take 1`,
		`DeviceEvents | where ActionType == "ScheduledTaskCreated" | take 1`,
		`DeviceEvents | where ActionType == "UserAccountAddedToLocalGroup" | take 1`,
		`DeviceFileEvents | where FolderPath has "Startup" | take 1`,
		`DeviceNetworkEvents | where RemoteIPType == "Public" and InitiatingProcessFileName =~ "powershell.exe" | take 1`,
		`DeviceLogonEvents | where ActionType == "LogonFailed" | take 1`,
	} {
		if r := mustHunt(t, emu, tok, q); len(r.Results) == 0 {
			t.Errorf("nothing for %s", q)
		}
	}
}

// FuzzHuntingQuery sends arbitrary queries through the whole handler: the
// answer is always 200 or 400, never a panic or a 5xx.
func FuzzHuntingQuery(f *testing.F) {
	s, err := emulator.New(emulator.Options{
		Tenant:     emulator.Generate(emulator.GenerateOptions{Seed: 1, Machines: 5, Now: huntNow}),
		Now:        func() time.Time { return huntNow },
		RateLimits: emulator.RateLimits{Off: true},
	})
	if err != nil {
		f.Fatal(err)
	}
	for _, q := range []string{
		`DeviceInfo | summarize arg_max(Timestamp, *) by DeviceId`,
		`DeviceLogonEvents | where ActionType == "LogonSuccess" | summarize make_set(LogonType) by AccountName | take 3`,
		`DeviceProcessEvents | where ProcessCommandLine has "-enc" | project Timestamp, DeviceName`,
		`DeviceEvents | extend F = parse_json(AdditionalFields) | project F.TaskName`,
		`DeviceRegistryEvents | where Timestamp between (ago(2d) .. ago(1d)) | count`,
	} {
		f.Add(q)
	}
	var tok string
	f.Fuzz(func(t *testing.T, query string) {
		if tok == "" {
			tok = tokenFrom(t, s, "https://api.securitycenter.microsoft.com/.default")
		}
		body, _ := json.Marshal(map[string]string{"Query": query})
		req := httptest.NewRequest("POST", "https://api.securitycenter.microsoft.com/api/advancedqueries/run", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 400 {
			t.Fatalf("%q: %d %s", query, rec.Code, rec.Body)
		}
	})
}

func TestHuntingControlTenantCounts(t *testing.T) {
	emu := huntingEmu(t, 30)
	pairs, accounts := emu.Tenant().LogonUserCounts(huntNow)
	if pairs == 0 || accounts == 0 || accounts > pairs {
		t.Fatalf("pairs %d, accounts %d", pairs, accounts)
	}
	// A month later, with no new logons, nothing is left in the window.
	later, _ := emu.Tenant().LogonUserCounts(huntNow.Add(200 * 24 * time.Hour))
	if later != 0 {
		t.Errorf("%d pairs 200 days on", later)
	}
}
