package emulator_test

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

type mdeErr struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Target  string `json:"target"`
	} `json:"error"`
}

func decodeErr(t *testing.T, body []byte) mdeErr {
	t.Helper()
	var e mdeErr
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if !strings.HasPrefix(e.Error.Target, "|") || !strings.HasSuffix(e.Error.Target, ".") {
		t.Errorf("error target %q is not shaped like the live service's", e.Error.Target)
	}
	return e
}

// clock is a settable clock for the emulator.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestUnauthenticatedCallsGet401(t *testing.T) {
	clk := newClock()
	emu := emulatortest.New(t, emulatortest.WithMachines(5), emulatortest.WithNow(clk.Now))
	good := emu.AppToken(t)

	// A token of the same signing key but another tenant: a second
	// emulator sharing the state directory.
	dir := t.TempDir()
	a, err := emulator.New(emulator.Options{Tenant: emulator.Generate(emulator.GenerateOptions{Seed: 2, Machines: 1}), StateDir: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	b, err := emulator.New(emulator.Options{Tenant: emulator.Generate(emulator.GenerateOptions{Seed: 3, Machines: 1}), StateDir: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	otherTenant := tokenFrom(t, a, "https://api.securitycenter.microsoft.com/.default")
	if rec := call(b, "GET", "/api/machines", otherTenant); rec.Code != 401 {
		t.Errorf("token of another tenant: %d", rec.Code)
	}
	if rec := call(a, "GET", "/api/machines", otherTenant); rec.Code != 200 {
		t.Errorf("token of the tenant: %d", rec.Code)
	}

	graph := tokenFrom(t, emu.Server, "https://graph.microsoft.com/.default")
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))

	for name, tok := range map[string]string{
		"no token": "", "malformed": "abc", "bad signature": tampered, "graph audience": graph,
	} {
		resp, body := emu.Get(t, "/api/machines", tok)
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: %d WWW-Authenticate=%q", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			continue
		}
		if e := decodeErr(t, body); e.Error.Code != "Unauthorized" {
			t.Errorf("%s: %+v", name, e)
		}
	}
	if resp, _ := emu.Get(t, "/api/machines", good); resp.StatusCode != 200 {
		t.Fatalf("good token: %d", resp.StatusCode)
	}
	clk.Advance(66 * time.Minute) // past exp and the 5 minutes of skew
	if resp, _ := emu.Get(t, "/api/machines", good); resp.StatusCode != 401 {
		t.Errorf("expired token: %d", resp.StatusCode)
	}
}

// tokenFrom gets a token from s in-process for a new app with every role.
func tokenFrom(t *testing.T, s *emulator.Server, scope string) string {
	t.Helper()
	app, err := s.CreateApp(emulator.AppSpec{Roles: append(emulator.AllRoles(), "Directory.Read.All")})
	if err != nil {
		t.Fatal(err)
	}
	body := "grant_type=client_credentials&client_id=" + app.ClientID + "&client_secret=" + app.ClientSecret + "&scope=" + scope
	req := httptest.NewRequest("POST", "https://login.microsoftonline.com/"+s.TenantID()+"/oauth2/v2.0/token", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &tok) != nil {
		t.Fatalf("token: %d %s", rec.Code, rec.Body)
	}
	return tok.AccessToken
}

// call serves one request in-process.
func call(s *emulator.Server, method, target, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "https://api.securitycenter.microsoft.com"+target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func TestMissingPermissionGets403(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(5))
	tok := emu.Token(t, "Alert.Read.All")
	resp, body := emu.Get(t, "/api/machines", tok)
	if resp.StatusCode != 403 {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
	e := decodeErr(t, body)
	want := "The application does not have any of the required application permissions (Machine.Read.All, Machine.ReadWrite.All) to access the resource."
	if e.Error.Code != "Forbidden" || e.Error.Message != want {
		t.Errorf("got %+v\nwant Forbidden %q", e.Error, want)
	}
	// Reading is not enough to write.
	read := emu.Token(t, "Machine.Read.All")
	id := emu.AddMachines(1)[0]
	resp, body = emu.Do(t, "POST", "/api/machines/"+id+"/tags", read, `{"Value":"x","Action":"Add"}`)
	if e := decodeErr(t, body); resp.StatusCode != 403 || e.Error.Message != "The application does not have any of the required application permissions (Machine.ReadWrite.All) to access the resource." {
		t.Errorf("tag with Machine.Read.All: %d %+v", resp.StatusCode, e.Error)
	}
}

func TestRateLimit101stCallIsThrottled(t *testing.T) {
	clk := newClock()
	emu := emulatortest.New(t, emulatortest.WithMachines(3), emulatortest.WithNow(clk.Now))
	tok := emu.AppToken(t)
	for i := range 100 {
		if resp, body := emu.Get(t, "/api/machines?$top=1", tok); resp.StatusCode != 200 {
			t.Fatalf("call %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
	clk.Advance(15 * time.Second)
	resp, body := emu.Get(t, "/api/machines?$top=1", tok)
	if resp.StatusCode != 429 {
		t.Fatalf("101st call: %d, want 429", resp.StatusCode)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "45" {
		t.Errorf("Retry-After = %q, want 45", ra)
	}
	if e := decodeErr(t, body); e.Error.Code != "TooManyRequests" || e.Error.Message != "API calls quota exceeded! maximum allowed 100 per 00:01:00" {
		t.Errorf("429 body %+v", e.Error)
	}
	// The quota is per app and per API.
	if resp, _ := emu.Get(t, "/api/machines?$top=1", emu.Token(t, "Machine.Read.All")); resp.StatusCode != 200 {
		t.Errorf("another app: %d", resp.StatusCode)
	}
	if resp, _ := emu.Get(t, "/api/machines/nosuch", tok); resp.StatusCode != 404 {
		t.Errorf("another API: %d", resp.StatusCode)
	}
	clk.Advance(45 * time.Second)
	if resp, _ := emu.Get(t, "/api/machines?$top=1", tok); resp.StatusCode != 200 {
		t.Errorf("after the window: %d", resp.StatusCode)
	}
	st := emu.Stats()
	if st.Throttled != 1 || st.Calls["GET /api/machines"] != 103 {
		t.Errorf("stats %+v", st)
	}
}

func TestRateLimitHourWindowAndDivisor(t *testing.T) {
	clk := newClock()
	s, err := emulator.New(emulator.Options{Tenant: emulator.Generate(emulator.GenerateOptions{Seed: 1, Machines: 1, Now: clk.Now()}), Now: clk.Now, RateLimits: emulator.RateLimits{Divisor: 60}})
	if err != nil {
		t.Fatal(err)
	}
	tok := tokenFrom(t, s, "https://api.securitycenter.microsoft.com/.default")
	// x60: 100 per second and 1,500 per minute.
	for i := range 100 {
		if rec := call(s, "GET", "/api/machines/nosuch", tok); rec.Code != 404 {
			t.Fatalf("call %d: %d", i, rec.Code)
		}
	}
	rec := call(s, "GET", "/api/machines/nosuch", tok)
	if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 429 || rec.Header().Get("Retry-After") != "1" || e.Error.Message != "API calls quota exceeded! maximum allowed 100 per 00:00:01" {
		t.Fatalf("101st call in a second: %d %s %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	calls := 100
	for calls < 1500 {
		clk.Advance(time.Second)
		for range 100 {
			if rec := call(s, "GET", "/api/machines/nosuch", tok); rec.Code != 404 {
				t.Fatalf("call %d: %d", calls, rec.Code)
			}
			calls++
		}
	}
	clk.Advance(time.Second)
	rec = call(s, "GET", "/api/machines/nosuch", tok)
	if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 429 || e.Error.Message != "API calls quota exceeded! maximum allowed 1500 per 00:01:00" || rec.Header().Get("Retry-After") != "45" {
		t.Fatalf("1501st call in a minute: %d Retry-After=%s %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}

	if err := s.SetRateLimits(emulator.RateLimits{Off: true}); err != nil {
		t.Fatal(err)
	}
	if rec := call(s, "GET", "/api/machines/nosuch", tok); rec.Code != 404 {
		t.Errorf("rate limits off: %d", rec.Code)
	}
}

func TestParseRateLimits(t *testing.T) {
	for in, want := range map[string]emulator.RateLimits{
		"real": {}, "": {}, "off": {Off: true}, "x60": {Divisor: 60}, "X2": {Divisor: 2}, "x1": {},
	} {
		got, err := emulator.ParseRateLimits(in)
		if err != nil || got != want {
			t.Errorf("%q: got %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"fast", "x0", "x-3", "60", "x1.5"} {
		if _, err := emulator.ParseRateLimits(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if s := (emulator.RateLimits{Divisor: 60}).String(); s != "x60" {
		t.Errorf("String = %q", s)
	}
}

func TestStateDirKeepsCredentialsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	tenant := emulator.Generate(emulator.GenerateOptions{Seed: 9, Machines: 2})
	s1, err := emulator.New(emulator.Options{Tenant: tenant, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	app, err := s1.CreateApp(emulator.AppSpec{Roles: []string{"Machine.Read.All"}})
	if err != nil {
		t.Fatal(err)
	}
	oldToken := tokenFrom(t, s1, "https://api.securitycenter.microsoft.com/.default")

	data, err := os.ReadFile(filepath.Join(dir, "apps.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), app.ClientSecret) {
		t.Error("apps.json holds a client secret in clear")
	}
	for _, f := range []string{"apps.json", "signing-key.pem"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, st.Mode(), err)
		}
	}

	s2, err := emulator.New(emulator.Options{Tenant: tenant, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/"+tenant.ID()+"/oauth2/v2.0/token", strings.NewReader(
		"grant_type=client_credentials&client_id="+app.ClientID+"&client_secret="+app.ClientSecret+"&scope=https://api.securitycenter.microsoft.com/.default"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	s2.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("restarted emulator refused the app's secret: %d %s", rec.Code, rec.Body)
	}
	if rec := call(s2, "GET", "/api/machines", oldToken); rec.Code != 200 {
		t.Errorf("restarted emulator refused an old token: %d %s", rec.Code, rec.Body)
	}
}

func TestAllRoles(t *testing.T) {
	roles := emulator.AllRoles()
	if len(roles) != 23 {
		t.Errorf("%d roles, want the 23 of mde-api.md §1.4", len(roles))
	}
	for _, want := range []string{"Machine.Read.All", "Machine.ReadWrite.All", "Alert.Read.All", "Ti.ReadWrite", "URL.Read.All", "RemediationTasks.Read.All"} {
		if !slices.Contains(roles, want) {
			t.Errorf("AllRoles lacks %s", want)
		}
	}
}
