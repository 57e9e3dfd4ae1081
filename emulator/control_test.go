package emulator_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

func TestControlAPI(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(10))

	resp, body := emu.Do(t, "POST", "/_emulator/apps", "", `{"roles":["Machine.Read.All"],"displayName":"ctl"}`)
	var app emulator.AppCredentials
	if err := json.Unmarshal(body, &app); resp.StatusCode != 201 || err != nil || app.ClientSecret == "" || app.TenantID != emu.TenantID() {
		t.Fatalf("POST apps: %d %s", resp.StatusCode, body)
	}
	if resp, body := emu.Do(t, "POST", "/_emulator/apps", "", `{"roles":[],"credential":"password"}`); resp.StatusCode != 400 {
		t.Errorf("bad credential kind: %d %s", resp.StatusCode, body)
	}
	if resp, _ := emu.Do(t, "POST", "/_emulator/apps", "", `{"role":["x"]}`); resp.StatusCode != 400 {
		t.Errorf("unknown field accepted: %d", resp.StatusCode)
	}
	tok := emu.TokenFor(t, app)

	resp, body = emu.Do(t, "POST", "/_emulator/machines", "", `{"count":5,"seed":42}`)
	var added struct{ IDs []string }
	if err := json.Unmarshal(body, &added); resp.StatusCode != 201 || err != nil || len(added.IDs) != 5 {
		t.Fatalf("POST machines: %d %s", resp.StatusCode, body)
	}
	if status, _, _ := getMachine(t, emu, added.IDs[0], tok); status != 200 {
		t.Errorf("added machine: %d", status)
	}
	if resp, _ := emu.Do(t, "DELETE", "/_emulator/machines/"+added.IDs[0], "", ""); resp.StatusCode != 204 {
		t.Errorf("DELETE machine: %d", resp.StatusCode)
	}
	if status, _, _ := getMachine(t, emu, added.IDs[0], tok); status != 404 {
		t.Errorf("deleted machine: %d", status)
	}
	if resp, _ := emu.Do(t, "DELETE", "/_emulator/machines/"+added.IDs[0], "", ""); resp.StatusCode != 404 {
		t.Errorf("DELETE deleted machine: %d", resp.StatusCode)
	}

	_, body = emu.Get(t, "/_emulator/tenant", "")
	var tenant struct {
		TenantID string         `json:"tenantId"`
		Counts   map[string]int `json:"counts"`
	}
	if err := json.Unmarshal(body, &tenant); err != nil || tenant.TenantID != emu.TenantID() || tenant.Counts["machines"] != 14 {
		t.Errorf("GET tenant: %s", body)
	}

	_, body = emu.Get(t, "/_emulator/stats", "")
	var st emulator.Stats
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	want := emulator.Stats{Calls: map[string]int{
		"POST /{tenant}/oauth2/v2.0/token": 1,
		"GET /api/machines/{id}":           2,
	}}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if resp, _ := emu.Do(t, "DELETE", "/_emulator/stats", "", ""); resp.StatusCode != 204 {
		t.Errorf("DELETE stats: %d", resp.StatusCode)
	}
	if st := emu.Stats(); len(st.Calls) != 0 || st.Throttled != 0 {
		t.Errorf("stats after reset: %+v", st)
	}

	if resp, body := emu.Do(t, "PUT", "/_emulator/ratelimits", "", `{"rateLimits":"x60"}`); resp.StatusCode != 200 || !strings.Contains(string(body), "x60") {
		t.Errorf("PUT ratelimits: %d %s", resp.StatusCode, body)
	}
	if got := emu.RateLimits(); got != (emulator.RateLimits{Divisor: 60}) {
		t.Errorf("rate limits %+v", got)
	}
	if resp, _ := emu.Do(t, "PUT", "/_emulator/ratelimits", "", `{"rateLimits":"fast"}`); resp.StatusCode != 400 {
		t.Errorf("bad rate limits accepted: %d", resp.StatusCode)
	}
}

func TestFaultInjection(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(10), emulatortest.WithRateLimits(emulator.RateLimits{Off: true}))
	tok := emu.AppToken(t)

	resp, body := emu.Do(t, "POST", "/_emulator/faults", "", `{"route":"GET /api/machines","status":503,"count":2}`)
	if resp.StatusCode != 201 {
		t.Fatalf("POST faults: %d %s", resp.StatusCode, body)
	}
	for i, want := range []int{503, 503, 200} {
		resp, body := emu.Get(t, "/api/machines", tok)
		if resp.StatusCode != want {
			t.Fatalf("call %d: %d, want %d", i, resp.StatusCode, want)
		}
		if want == 503 {
			if e := decodeErr(t, body); e.Error.Code != "ServiceUnavailable" {
				t.Errorf("503 body %s", body)
			}
		}
	}
	if f := emu.Faults(); len(f) != 0 {
		t.Errorf("spent fault still listed: %+v", f)
	}

	// skip lets calls through before the fault applies.
	if resp, body := emu.Do(t, "POST", "/_emulator/faults", "", `{"route":"GET /api/machines","status":500,"count":1,"skip":2}`); resp.StatusCode != 201 {
		t.Fatalf("POST faults with skip: %d %s", resp.StatusCode, body)
	}
	for i, want := range []int{200, 200, 500, 200} {
		if resp, _ := emu.Get(t, "/api/machines", tok); resp.StatusCode != want {
			t.Fatalf("skip: call %d: %d, want %d", i, resp.StatusCode, want)
		}
	}

	// A 429 storm on the token endpoint, Entra-shaped.
	if _, err := emu.AddFault(emulator.Fault{Route: "/{tenant}/oauth2/v2.0/token", Throttle: true, RetryAfter: 7, Count: 1}); err != nil {
		t.Fatal(err)
	}
	resp, body = emu.Do(t, "POST", "/"+emu.TenantID()+"/oauth2/v2.0/token", "", "")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" || !strings.Contains(string(body), `"error":"temporarily_unavailable"`) {
		t.Errorf("throttled token call: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if _, err := emu.AddFault(emulator.Fault{Route: "GET /api/machines/{id}", Throttle: true}); err != nil {
		t.Fatal(err)
	}
	resp, body = emu.Get(t, "/api/machines/x", tok)
	if e := decodeErr(t, body); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" || e.Error.Code != "TooManyRequests" {
		t.Errorf("throttled MDE call: %d %s", resp.StatusCode, body)
	}
	if st := emu.Stats(); st.Throttled != 2 {
		t.Errorf("throttled = %d, want 2", st.Throttled)
	}
	emu.ClearFaults()

	// Damaged bodies.
	if _, err := emu.AddFault(emulator.Fault{Route: "GET /api/machines", MalformedBody: true, Count: 1}); err != nil {
		t.Fatal(err)
	}
	resp, body = emu.Get(t, "/api/machines", tok)
	if resp.StatusCode != 200 || json.Valid(body) {
		t.Errorf("malformed body: %d valid=%v", resp.StatusCode, json.Valid(body))
	}
	if _, err := emu.AddFault(emulator.Fault{Route: "*", TruncateBody: true, Count: 1}); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", emu.URL+"/api/machines", nil)
	req.RequestURI = ""
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := emu.Client.Do(req); err == nil {
		_, err = readAll(resp)
		if err == nil {
			t.Error("truncated body read without error")
		}
	}

	// A rate: repeatable, roughly the share asked for.
	if _, err := emu.AddFault(emulator.Fault{Route: "GET /api/machines/{id}", Status: 500, Rate: 0.3}); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for range 100 {
		if resp, _ := emu.Get(t, "/api/machines/x", tok); resp.StatusCode == 500 {
			failed++
		}
	}
	if failed < 15 || failed > 45 {
		t.Errorf("%d of 100 calls failed at rate 0.3", failed)
	}
	_, body = emu.Get(t, "/_emulator/faults", "")
	var list struct{ Faults []emulator.Fault }
	if err := json.Unmarshal(body, &list); err != nil || len(list.Faults) != 1 || list.Faults[0].Hits != failed {
		t.Errorf("GET faults: %s (want hits %d)", body, failed)
	}
	if resp, _ := emu.Do(t, "DELETE", "/_emulator/faults", "", ""); resp.StatusCode != 204 || len(emu.Faults()) != 0 {
		t.Errorf("DELETE faults: %d %v", resp.StatusCode, emu.Faults())
	}

	for _, bad := range []string{
		`{"route":"GET /api/nosuch","status":500}`,
		`{"route":"GET /api/machines"}`,
		`{"route":"GET /api/machines","status":500,"rate":2}`,
		`{"route":"GET /_emulator/stats","status":500}`,
	} {
		if resp, body := emu.Do(t, "POST", "/_emulator/faults", "", bad); resp.StatusCode != 400 {
			t.Errorf("%s accepted: %d %s", bad, resp.StatusCode, body)
		}
	}
}

func TestFaultLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := emulator.New(emulator.Options{Tenant: emulator.Generate(emulator.GenerateOptions{Seed: 1, Machines: 1})})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddFault(emulator.Fault{Route: "GET /api/machines", LatencyMs: 90_000}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		rec := call(s, "GET", "/api/machines", "")
		if took := time.Since(start); took != 90*time.Second {
			t.Errorf("answered after %v, want 90s", took)
		}
		if rec.Code != 401 {
			t.Errorf("after the delay: %d, want the normal answer (401 without a token)", rec.Code)
		}
	})
}
