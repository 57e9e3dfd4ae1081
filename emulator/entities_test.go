package emulator_test

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

func TestFilesIPsDomainsUsers(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(2000))
	tok := emu.AppToken(t)
	var common, absent string
	var commonSHA256 string
	for _, f := range emu.Tenant().CatalogFiles() {
		switch {
		case f.Name == "msedge.exe":
			common, commonSHA256 = f.SHA1, f.SHA256
		case !f.InTenant:
			absent = f.SHA1
		}
	}
	// A file profile by SHA-1 or SHA-256.
	for _, h := range []string{common, commonSHA256, strings.ToUpper(common)} {
		resp, body := emu.Get(t, "/api/files/"+h, tok)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"sha1":"`+common+`"`) {
			t.Errorf("file %s: %d %s", h, resp.StatusCode, body)
		}
	}
	stats := func(path string) (map[string]any, int) {
		t.Helper()
		resp, body := emu.Get(t, path, tok)
		var m map[string]any
		json.Unmarshal(body, &m)
		return m, resp.StatusCode
	}
	m, code := stats("/api/files/" + common + "/stats?lookBackHours=48")
	if n := m["organizationPrevalence"].(float64); code != 200 || n < 100 || m["orgPrevalence"] != strconv.Itoa(int(n)) {
		t.Errorf("stats of a common file: %d %v", code, m)
	}
	if m, _ := stats("/api/files/" + absent + "/stats"); m["organizationPrevalence"].(float64) != 0 || m["orgFirstSeen"] != nil {
		t.Errorf("stats of a file never seen here: %v", m)
	}
	// Machines with the file: SHA-1 only; unknown is an empty set.
	resp, body := emu.Get(t, "/api/files/"+common+"/machines", tok)
	var ms struct{ Value []struct{ ID string } }
	if json.Unmarshal(body, &ms); resp.StatusCode != 200 || len(ms.Value) < 100 {
		t.Errorf("machines with a common file: %d, %d machines", resp.StatusCode, len(ms.Value))
	}
	if resp, body := emu.Get(t, "/api/files/"+strings.Repeat("ab", 20)+"/machines", tok); resp.StatusCode != 200 || !strings.Contains(string(body), `"value":[]`) {
		t.Errorf("machines with an unknown file: %d %s", resp.StatusCode, body)
	}
	for path, code := range map[string]int{
		"/api/files/" + commonSHA256 + "/machines":           400,
		"/api/files/nothex/stats":                            400,
		"/api/files/" + strings.Repeat("0", 40):              404,
		"/api/files/" + common + "/stats?lookBackHours=9999": 400,
		"/api/ips/999.1.1.1/stats":                           400,
		"/api/domains/bad_domain!/stats":                     400,
	} {
		if resp, body := emu.Get(t, path, tok); resp.StatusCode != code {
			t.Errorf("%s: %d %s, want %d", path, resp.StatusCode, body, code)
		}
	}
	if m, code := stats("/api/ips/198.51.100.77/stats"); code != 200 || m["organizationPrevalence"].(float64) != 0 || m["orgPrevalence"] != "0" {
		t.Errorf("unknown IP: %d %v", code, m)
	}
	if m, _ := stats("/api/domains/microsoft.com/stats"); m["organizationPrevalence"].(float64) < 1000 {
		t.Errorf("microsoft.com prevalence: %v", m)
	}
	resp, body = emu.Get(t, "/api/domains/microsoft.com/machines", tok)
	if json.Unmarshal(body, &ms); resp.StatusCode != 200 || len(ms.Value) != 500 {
		t.Errorf("domain machines are capped at 500: %d %d", resp.StatusCode, len(ms.Value))
	}
	// A user's machines: those the account logs on to.
	id := pickMachine(t, emu, tok, onlineWindows)
	user := emu.Tenant().LogonUsers(id, time.Now())[0]
	resp, body = emu.Get(t, "/api/users/"+url.PathEscape(user)+"/machines", tok)
	if json.Unmarshal(body, &ms); resp.StatusCode != 200 || !containsID(ms.Value, id) {
		t.Errorf("machines of %s lack %s: %d", user, id, resp.StatusCode)
	}
	// Permissions are per entity.
	if resp, _ := emu.Get(t, "/api/files/"+common, emu.Token(t, "Machine.Read.All")); resp.StatusCode != 403 {
		t.Errorf("file profile without File.Read.All: %d", resp.StatusCode)
	}
	if resp, _ := emu.Get(t, "/api/ips/8.8.8.8/stats", emu.Token(t, "File.Read.All")); resp.StatusCode != 403 {
		t.Errorf("ip stats without Ip.Read.All: %d", resp.StatusCode)
	}
}

func containsID(list []struct{ ID string }, id string) bool {
	for _, m := range list {
		if m.ID == id {
			return true
		}
	}
	return false
}

func TestInvestigations(t *testing.T) {
	clk := newClock()
	emu := emulatortest.New(t, emulatortest.WithMachines(500), emulatortest.WithNow(clk.Now))
	tok := emu.AppToken(t)
	id := pickMachine(t, emu, tok, onlineWindows)
	resp, body := emu.Do(t, "POST", "/api/machines/"+id+"/startInvestigation", tok, `{"Comment":"Test investigation"}`)
	var inv struct {
		ID, State, MachineID string
		EndTime              *string
	}
	if json.Unmarshal(body, &inv); resp.StatusCode != 201 || inv.State != "Running" || inv.MachineID != id || inv.EndTime != nil {
		t.Fatalf("start: %d %s", resp.StatusCode, body)
	}
	if resp, _ := emu.Do(t, "POST", "/api/machines/"+id+"/startInvestigation", emu.Token(t, "Alert.Read.All"), `{"Comment":"x"}`); resp.StatusCode != 403 {
		t.Errorf("start without Alert.ReadWrite.All: %d", resp.StatusCode)
	}
	clk.Advance(3 * time.Minute)
	resp, body = emu.Get(t, "/api/investigations/"+inv.ID, tok)
	if json.Unmarshal(body, &inv); resp.StatusCode != 200 || inv.State == "Running" || inv.EndTime == nil {
		t.Errorf("after it ran: %d %s", resp.StatusCode, body)
	}
	resp, body = emu.Get(t, "/api/investigations?$filter="+url.QueryEscape("machineId eq '"+id+"'"), tok)
	var l struct{ Value []struct{ ID string } }
	if json.Unmarshal(body, &l); resp.StatusCode != 200 || len(l.Value) == 0 || l.Value[0].ID != inv.ID {
		t.Errorf("by machine: %d %s", resp.StatusCode, body)
	}
	if resp, _ := emu.Get(t, "/api/investigations/1", tok); resp.StatusCode != 404 {
		t.Errorf("unknown investigation: %d", resp.StatusCode)
	}
}

// The entity alert routes find the alerts whose evidence mentions the value,
// and what an alert saw counts in the entity's prevalence and machines.
func TestEntityAlerts(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(300), emulatortest.WithAlerts(400))
	tok := emu.AppToken(t)
	resp, body := emu.Get(t, "/api/alerts?$expand=evidence&$top=400", tok)
	var alerts struct {
		Value []struct {
			ID          string
			MachineID   string
			RelatedUser *struct{ UserName string }
			Evidence    []struct {
				EntityType, Sha1, IPAddress, URL, AccountName string
			}
		}
	}
	if json.Unmarshal(body, &alerts); resp.StatusCode != 200 || len(alerts.Value) == 0 {
		t.Fatalf("alerts: %d", resp.StatusCode)
	}
	var sha1, ip, user, alertMachine string
	for _, a := range alerts.Value {
		for _, e := range a.Evidence {
			switch {
			case sha1 == "" && e.Sha1 != "":
				sha1, alertMachine = e.Sha1, a.MachineID
			case ip == "" && e.IPAddress != "":
				ip = e.IPAddress
			case user == "" && e.AccountName != "":
				user = e.AccountName
			}
		}
	}
	if sha1 == "" || ip == "" || user == "" {
		t.Fatalf("no evidence to look up: %q %q %q", sha1, ip, user)
	}
	for path, set := range map[string]string{
		"/api/files/" + sha1 + "/alerts": "#Alerts", "/api/ips/" + ip + "/alerts": "#AlertEntitySetName",
		"/api/users/" + url.PathEscape(user) + "/alerts": "#Alerts",
	} {
		resp, body := emu.Get(t, path, tok)
		var l struct {
			Context string `json:"@odata.context"`
			Value   []struct {
				ID       string
				Evidence []json.RawMessage
			}
		}
		if json.Unmarshal(body, &l); resp.StatusCode != 200 || len(l.Value) == 0 || !strings.HasSuffix(l.Context, set) || len(l.Value[0].Evidence) == 0 {
			t.Errorf("%s: %d %d alerts, context %s", path, resp.StatusCode, len(l.Value), l.Context)
		}
	}
	for _, path := range []string{"/api/files/" + strings.Repeat("0", 40) + "/alerts", "/api/domains/quiet.example/alerts", "/api/ips/192.0.2.200/alerts"} {
		if resp, body := emu.Get(t, path, tok); resp.StatusCode != 200 || !strings.Contains(string(body), `"value":[]`) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	if resp, _ := emu.Get(t, "/api/ips/not-an-ip/alerts", tok); resp.StatusCode != 400 {
		t.Errorf("bad IP: %d", resp.StatusCode)
	}
	if resp, _ := emu.Get(t, "/api/files/"+sha1+"/alerts", emu.Token(t, "File.Read.All")); resp.StatusCode != 403 {
		t.Errorf("file alerts without Alert.Read.All: %d", resp.StatusCode)
	}
	// A file only alerts know: profiled like the alert's files, seen on the alert's machine.
	if resp, body := emu.Get(t, "/api/files/"+sha1, tok); resp.StatusCode != 200 || !strings.Contains(string(body), sha1) {
		t.Errorf("profile of an alert's file: %d %s", resp.StatusCode, body)
	}
	resp, body = emu.Get(t, "/api/files/"+sha1+"/machines", tok)
	var ms struct{ Value []struct{ ID string } }
	if json.Unmarshal(body, &ms); resp.StatusCode != 200 || !containsID(ms.Value, alertMachine) {
		t.Errorf("machines of an alert's file lack the alert's machine: %d", resp.StatusCode)
	}
}
