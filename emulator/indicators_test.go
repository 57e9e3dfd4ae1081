package emulator_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

type indicatorOut struct {
	ID               string   `json:"id"`
	IndicatorValue   string   `json:"indicatorValue"`
	IndicatorType    string   `json:"indicatorType"`
	Action           string   `json:"action"`
	Application      *string  `json:"application"`
	Title            string   `json:"title"`
	Severity         string   `json:"severity"`
	RBACGroupNames   []string `json:"rbacGroupNames"`
	CreatedBySource  string   `json:"createdBySource"`
	LastUpdateTime   string   `json:"lastUpdateTime"`
	CreationDateTime string   `json:"creationTimeDateTimeUtc"`
}

func listIndicators(t *testing.T, emu *emulatortest.Emu, tok, query string) []indicatorOut {
	t.Helper()
	resp, body := emu.Get(t, "/api/indicators"+query, tok)
	var l struct{ Value []indicatorOut }
	if resp.StatusCode != 200 || json.Unmarshal(body, &l) != nil {
		t.Fatalf("list indicators: %d %s", resp.StatusCode, body)
	}
	return l.Value
}

func TestIndicatorUpsertAndValidation(t *testing.T) {
	clk := newClock()
	emu := emulatortest.New(t, emulatortest.WithMachines(20), emulatortest.WithNow(clk.Now))
	tok := emu.AppToken(t)
	before := len(listIndicators(t, emu, tok, ""))
	if before == 0 {
		t.Fatal("a generated tenant has no indicators")
	}
	body := `{"indicatorValue":"220E7D15B011D7FAC48F2BD61114DB1022197F7F","indicatorType":"FileSha1","title":"test","application":"demo-test",
		"expirationTime":"2027-12-12T00:00:00Z","action":"AlertAndBlock","severity":"Informational","description":"test","recommendedActions":"nothing"}`
	resp, data := emu.Do(t, "POST", "/api/indicators", tok, body)
	var first indicatorOut
	if json.Unmarshal(data, &first); resp.StatusCode != 200 || first.IndicatorValue != "220e7d15b011d7fac48f2bd61114db1022197f7f" || first.ID == "" {
		t.Fatalf("submit: %d %s", resp.StatusCode, data)
	}
	clk.Advance(time.Minute)
	// The same type and value again: an update, keeping the id and the
	// application (which applies on create only).
	upd := strings.NewReplacer(`"AlertAndBlock"`, `"Block"`, `"demo-test"`, `"other-app"`).Replace(body)
	resp, data = emu.Do(t, "POST", "/api/indicators", tok, upd)
	var second indicatorOut
	if json.Unmarshal(data, &second); resp.StatusCode != 200 || second.ID != first.ID || second.Action != "Block" || *second.Application != "demo-test" || second.LastUpdateTime == first.LastUpdateTime {
		t.Fatalf("update: %d %s", resp.StatusCode, data)
	}
	if n := len(listIndicators(t, emu, tok, "")); n != before+1 {
		t.Errorf("%d indicators after submit and update, want %d", n, before+1)
	}

	tests := []struct {
		name, body, code string
	}{
		{"bad sha1", `{"indicatorValue":"xyz","indicatorType":"FileSha1","action":"Block","title":"t","description":"d"}`, "InvalidHashValue"},
		{"sha256 too short", `{"indicatorValue":"abcd","indicatorType":"FileSha256","action":"Block","title":"t","description":"d"}`, "InvalidHashValue"},
		{"cidr", `{"indicatorValue":"12.13.14.0/24","indicatorType":"IpAddress","action":"Block","title":"t","description":"d"}`, "InvalidIpAddress"},
		{"private ip", `{"indicatorValue":"10.1.2.3","indicatorType":"IpAddress","action":"Block","title":"t","description":"d"}`, "InvalidIpAddress"},
		{"bad domain", `{"indicatorValue":"exa mple.com","indicatorType":"DomainName","action":"Block","title":"t","description":"d"}`, "InvalidDomainName"},
		{"bad url", `{"indicatorValue":"ftp:/x","indicatorType":"Url","action":"Block","title":"t","description":"d"}`, "InvalidUrl"},
		{"unknown type", `{"indicatorValue":"x","indicatorType":"Email","action":"Block","title":"t","description":"d"}`, "InvalidInput"},
		{"unknown action", `{"indicatorValue":"12.13.14.15","indicatorType":"IpAddress","action":"Nuke","title":"t","description":"d"}`, "InvalidInput"},
		{"remediate a domain", `{"indicatorValue":"bad.example","indicatorType":"DomainName","action":"BlockAndRemediate","title":"t","description":"d"}`, "InvalidInput"},
		{"audit without alert", `{"indicatorValue":"bad.example","indicatorType":"DomainName","action":"Audit","title":"t","description":"d"}`, "InvalidInput"},
		{"bad severity", `{"indicatorValue":"bad.example","indicatorType":"DomainName","action":"Block","title":"t","description":"d","severity":"Critical"}`, "InvalidInput"},
		{"expired", `{"indicatorValue":"bad.example","indicatorType":"DomainName","action":"Block","title":"t","description":"d","expirationTime":"2020-01-01T00:00:00Z"}`, "InvalidInput"},
		{"unknown group", `{"indicatorValue":"bad.example","indicatorType":"DomainName","action":"Block","title":"t","description":"d","rbacGroupNames":["nope"]}`, "InvalidInput"},
		{"no title", `{"indicatorValue":"bad.example","indicatorType":"DomainName","action":"Block","description":"d"}`, "MissingRequiredParameter"},
		{"pascal case", `{"IndicatorValue":"bad.example","indicatorType":"DomainName","action":"Block","title":"t","description":"d"}`, "InvalidRequestBody"},
	}
	for _, tt := range tests {
		resp, data := emu.Do(t, "POST", "/api/indicators", tok, tt.body)
		if e := decodeErr(t, data); resp.StatusCode != 400 || e.Error.Code != tt.code {
			t.Errorf("%s: %d %s, want 400 %s", tt.name, resp.StatusCode, data, tt.code)
		}
	}
	// Audit with an alert, and a network indicator, are fine.
	resp, data = emu.Do(t, "POST", "/api/indicators", tok, `{"indicatorValue":"Bad.Example.","indicatorType":"DomainName","action":"Audit","generateAlert":true,"title":"t","description":"d"}`)
	var dom indicatorOut
	if json.Unmarshal(data, &dom); resp.StatusCode != 200 || dom.IndicatorValue != "bad.example" {
		t.Errorf("audit domain: %d %s", resp.StatusCode, data)
	}
}

func TestIndicatorImportAndDelete(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(20))
	tok := emu.AppToken(t)
	var items []string
	for i := range 499 {
		items = append(items, fmt.Sprintf(`{"indicatorValue":"%040x","indicatorType":"FileSha1","action":"Block","title":"t%d","description":"d"}`, i+1, i))
	}
	items = append(items, `{"indicatorValue":"not-a-hash","indicatorType":"FileSha1","action":"Block","title":"bad","description":"d"}`)
	resp, data := emu.Do(t, "POST", "/api/indicators/import", tok, `{"Indicators":[`+strings.Join(items, ",")+`]}`)
	var res struct {
		Value []struct {
			ID            *string `json:"id"`
			Indicator     string  `json:"indicator"`
			IsFailed      bool    `json:"isFailed"`
			FailureReason *string `json:"failureReason"`
		} `json:"value"`
	}
	if json.Unmarshal(data, &res); resp.StatusCode != 200 || len(res.Value) != 500 {
		t.Fatalf("import: %d %.300s", resp.StatusCode, data)
	}
	last := res.Value[499]
	if !last.IsFailed || last.ID != nil || last.FailureReason == nil || !strings.Contains(*last.FailureReason, "not-a-hash") {
		t.Errorf("the bad item: %+v", last)
	}
	if res.Value[0].IsFailed || res.Value[0].ID == nil {
		t.Errorf("a good item: %+v", res.Value[0])
	}
	over := `{"Indicators":[` + strings.Join(append(items, items[0]), ",") + `]}`
	if resp, data := emu.Do(t, "POST", "/api/indicators/import", tok, over); decodeErr(t, data).Error.Code != "MaximumBatchSizeExceeded" || resp.StatusCode != 400 {
		t.Errorf("501 indicators: %d %s", resp.StatusCode, data)
	}

	id0, id1 := *res.Value[0].ID, *res.Value[1].ID
	resp, data = emu.Do(t, "DELETE", "/api/indicators/"+id0, tok, "")
	if resp.StatusCode != 200 || len(data) != 0 {
		t.Errorf("delete: %d %q (the live service answers 200 with no body)", resp.StatusCode, data)
	}
	if resp, _ := emu.Do(t, "DELETE", "/api/indicators/"+id0, tok, ""); resp.StatusCode != 404 {
		t.Errorf("delete again: %d", resp.StatusCode)
	}
	// Batch delete is all or nothing: one unknown id deletes none.
	if resp, _ := emu.Do(t, "POST", "/api/indicators/BatchDelete", tok, `{"IndicatorIds":["`+id1+`","999999"]}`); resp.StatusCode != 404 {
		t.Errorf("batch delete with an unknown id: %d", resp.StatusCode)
	}
	if resp, _ := emu.Do(t, "POST", "/api/indicators/BatchDelete", tok, `{"IndicatorIds":["`+id1+`"]}`); resp.StatusCode != 204 {
		t.Errorf("batch delete: %d", resp.StatusCode)
	}
	if resp, _ := emu.Do(t, "POST", "/api/indicators/BatchDelete", tok, `{"IndicatorIds":[]}`); resp.StatusCode != 400 {
		t.Errorf("empty batch delete: %d", resp.StatusCode)
	}
	got := listIndicators(t, emu, tok, "?$filter="+url.QueryEscape("startswith(title,'t4') and indicatorType eq 'FileSha1'"))
	if len(got) != 110 { // t4, t40–t49, t400–t498
		t.Errorf("filtered list: %d", len(got))
	}
}

// An app with Ti.ReadWrite sees and manages only its own indicators.
func TestIndicatorOwnership(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(20), emulatortest.WithRateLimits(emulator.RateLimits{Off: true}))
	all := emu.AppToken(t)
	own := emu.Token(t, "Ti.ReadWrite")
	if got := listIndicators(t, emu, own, ""); len(got) != 0 {
		t.Errorf("an app with Ti.ReadWrite sees %d indicators it did not create", len(got))
	}
	body := `{"indicatorValue":"12.13.14.15","indicatorType":"IpAddress","action":"Block","title":"t","description":"d"}`
	if resp, _ := emu.Do(t, "POST", "/api/indicators", own, body); resp.StatusCode != 200 {
		t.Fatalf("own submit: %d", resp.StatusCode)
	}
	mine := listIndicators(t, emu, own, "")
	if len(mine) != 1 {
		t.Fatalf("own list: %d", len(mine))
	}
	var foreign []indicatorOut
	for _, in := range listIndicators(t, emu, all, "") {
		if in.CreatedBySource == "Portal" {
			foreign = append(foreign, in)
		}
	}
	if len(foreign) == 0 {
		t.Fatal("no portal indicators")
	}
	if resp, _ := emu.Do(t, "DELETE", "/api/indicators/"+foreign[0].ID, own, ""); resp.StatusCode != 404 {
		t.Errorf("deleting another's indicator: %d", resp.StatusCode)
	}
	upd := fmt.Sprintf(`{"indicatorValue":%q,"indicatorType":%q,"action":"Allowed","title":"t","description":"d"}`, foreign[0].IndicatorValue, foreign[0].IndicatorType)
	if resp, _ := emu.Do(t, "POST", "/api/indicators", own, upd); resp.StatusCode != 403 {
		t.Errorf("updating another's indicator: %d", resp.StatusCode)
	}
	if resp, _ := emu.Do(t, "DELETE", "/api/indicators/"+mine[0].ID, all, ""); resp.StatusCode != 200 {
		t.Errorf("Ti.ReadWrite.All deleting any: %d", resp.StatusCode)
	}
	if resp, _ := emu.Get(t, "/api/indicators", emu.Token(t, "Machine.Read.All")); resp.StatusCode != 403 {
		t.Errorf("no Ti permission: %d", resp.StatusCode)
	}
}

func TestIndicatorImportLimit(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(5))
	tok := emu.AppToken(t)
	one := `{"Indicators":[{"indicatorValue":"12.13.14.15","indicatorType":"IpAddress","action":"Block","title":"t","description":"d"}]}`
	for i := range 31 {
		resp, _ := emu.Do(t, "POST", "/api/indicators/import", tok, one)
		want := 200
		if i == 30 {
			want = 429
		}
		if resp.StatusCode != want {
			t.Fatalf("import %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
}
