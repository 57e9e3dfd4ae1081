// Package emulatortest runs the emulator for a test: over TLS on a loopback
// port, with a CA the test's HTTP client trusts, a generated tenant and an
// app that holds every MDE permission. Helpers read like the domain:
//
//	emu := emulatortest.New(t, emulatortest.WithMachines(25000))
//	emu.AddMachines(5000)
//	tok := emu.Token(t, "Machine.Read.All")
//
// It is test infrastructure: it fails the test on any setup error and
// registers every cleanup with tb.Cleanup.
package emulatortest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/emulator"
)

// Emu is a running emulator.
type Emu struct {
	*emulator.Server
	URL    string                  // https://127.0.0.1:port
	CA     *emulator.CA            // the CA that signed the server's certificate
	CAFile string                  // the CA certificate, written as ca.pem in tb.TempDir()
	Client *http.Client            // trusts CA
	App    emulator.AppCredentials // an app with every MDE permission (emulator.AllRoles)

	seed atomic.Int64 // for AddMachines
}

type config struct {
	machines   int
	alerts     int
	seed       int64
	rateLimits emulator.RateLimits
	now        func() time.Time
	tenant     *emulator.Tenant
	stateDir   string
	logLevel   slog.Level
	vulns      float64
	perFile    int
}

// Option changes how New sets the emulator up.
type Option func(*config)

// WithMachines generates n machines (default 100).
func WithMachines(n int) Option { return func(c *config) { c.machines = n } }

// WithAlerts generates n alerts of the last 30 days (default none).
func WithAlerts(n int) Option { return func(c *config) { c.alerts = n } }

// WithVulnsPerMachine sets the average vulnerability rows per machine of
// the generated tenant. The default here is 8, not the emulator's 50:
// tests that do not measure volume sync a fifth of the rows and CVEs.
func WithVulnsPerMachine(n float64) Option { return func(c *config) { c.vulns = n } }

// WithExportFileMachines sets how many machines' rows one export file
// holds (default 4,000), so small tenants can have several files.
func WithExportFileMachines(n int) Option { return func(c *config) { c.perFile = n } }

// WithSeed sets the tenant generator's seed (default 1).
func WithSeed(s int64) Option { return func(c *config) { c.seed = s } }

// WithRateLimits sets the throttling (default: Microsoft's real limits).
func WithRateLimits(r emulator.RateLimits) Option { return func(c *config) { c.rateLimits = r } }

// WithNow sets the emulator's clock; machines are generated relative to it.
func WithNow(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithTenant serves t instead of a generated tenant.
func WithTenant(t *emulator.Tenant) Option { return func(c *config) { c.tenant = t } }

// WithStateDir keeps apps and the signing key in dir.
func WithStateDir(dir string) Option { return func(c *config) { c.stateDir = dir } }

// WithLogLevel sets the level of the emulator log written to the test log
// (default Warn: unknown routes and failures show, routine requests do not).
func WithLogLevel(l slog.Level) Option { return func(c *config) { c.logLevel = l } }

// New starts an emulator for the test and stops it when the test ends.
func New(tb testing.TB, opts ...Option) *Emu {
	tb.Helper()
	c := config{machines: 100, seed: 1, logLevel: slog.LevelWarn, vulns: 8}
	for _, o := range opts {
		o(&c)
	}
	tenant := c.tenant
	if tenant == nil {
		var now time.Time
		if c.now != nil {
			now = c.now()
		}
		tenant = emulator.Generate(emulator.GenerateOptions{Seed: c.seed, Machines: c.machines, Alerts: c.alerts, Now: now, VulnsPerMachine: c.vulns})
	}
	logger := slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: c.logLevel}))
	srv, err := emulator.New(emulator.Options{
		Tenant: tenant, Logger: logger, Now: c.now, RateLimits: c.rateLimits, StateDir: c.stateDir, ExportFileMachines: c.perFile,
	})
	if err != nil {
		tb.Fatalf("emulatortest: %v", err)
	}
	ca, err := emulator.LoadOrCreateCA("")
	if err != nil {
		tb.Fatalf("emulatortest: %v", err)
	}
	tlsConfig, err := ca.ServerTLSConfig()
	if err != nil {
		tb.Fatalf("emulatortest: %v", err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.TLS = tlsConfig
	hs.StartTLS()
	tb.Cleanup(hs.Close)

	caFile := filepath.Join(tb.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o644); err != nil {
		tb.Fatalf("emulatortest: %v", err)
	}
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 16,
	}
	client := &http.Client{Transport: transport, Timeout: 2 * time.Minute}
	tb.Cleanup(transport.CloseIdleConnections)

	app, err := srv.CreateApp(emulator.AppSpec{Roles: emulator.AllRoles(), DisplayName: "emulatortest"})
	if err != nil {
		tb.Fatalf("emulatortest: %v", err)
	}
	e := &Emu{Server: srv, URL: hs.URL, CA: ca, CAFile: caFile, Client: client, App: app}
	e.seed.Store(c.seed * 7919)
	return e
}

// testWriter sends the emulator's log to the test log.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// AddMachines generates n more machines and returns their ids.
func (e *Emu) AddMachines(n int) []string {
	return e.Tenant().AddMachines(n, e.seed.Add(1))
}

// AddAlerts makes new alerts (spec.Seed 0 draws one) and returns their ids
// and stamps; it fails the test on a bad spec.
func (e *Emu) AddAlerts(tb testing.TB, spec emulator.AlertSpec) []emulator.AlertStamp {
	tb.Helper()
	if spec.Seed == 0 {
		spec.Seed = e.seed.Add(1)
	}
	st, err := e.Tenant().AddAlerts(spec)
	if err != nil {
		tb.Fatalf("emulatortest: add alerts: %v", err)
	}
	return st
}

// ChangeAlerts changes alerts as ChangeAlerts does and returns the new
// stamps; it fails the test on a bad change.
func (e *Emu) ChangeAlerts(tb testing.TB, ch emulator.AlertChange) []emulator.AlertStamp {
	tb.Helper()
	if ch.Seed == 0 {
		ch.Seed = e.seed.Add(1)
	}
	st, err := e.Tenant().ChangeAlerts(ch)
	if err != nil {
		tb.Fatalf("emulatortest: change alerts: %v", err)
	}
	return st
}

// TokenURL is the v2 token endpoint of the emulated tenant.
func (e *Emu) TokenURL() string {
	return e.URL + "/" + e.TenantID() + "/oauth2/v2.0/token"
}

// Token returns an MDE bearer token of a new app that holds exactly roles.
func (e *Emu) Token(tb testing.TB, roles ...string) string {
	tb.Helper()
	app, err := e.CreateApp(emulator.AppSpec{Roles: roles})
	if err != nil {
		tb.Fatalf("emulatortest: %v", err)
	}
	return e.TokenFor(tb, app)
}

// TokenFor returns an MDE bearer token for the app's client secret.
func (e *Emu) TokenFor(tb testing.TB, app emulator.AppCredentials) string {
	tb.Helper()
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {app.ClientID},
		"client_secret": {app.ClientSecret},
		"scope":         {"https://api.securitycenter.microsoft.com/.default"},
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, e.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		tb.Fatalf("emulatortest: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := e.Client.Do(req)
	if err != nil {
		tb.Fatalf("emulatortest: token: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("emulatortest: token: %s: %s", resp.Status, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		tb.Fatalf("emulatortest: token: %v: %s", err, body)
	}
	return tok.AccessToken
}

// AppToken returns an MDE bearer token of the all-permissions app.
func (e *Emu) AppToken(tb testing.TB) string {
	tb.Helper()
	return e.TokenFor(tb, e.App)
}

// Get calls the emulator with a bearer token (none when token is "") and
// returns the response with its body read.
func (e *Emu) Get(tb testing.TB, path, token string) (*http.Response, []byte) {
	tb.Helper()
	return e.Do(tb, http.MethodGet, path, token, "")
}

// Do calls the emulator; body, when not "", is sent as JSON.
func (e *Emu) Do(tb testing.TB, method, path, token, body string) (*http.Response, []byte) {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	target := path
	if !strings.HasPrefix(path, "https://") {
		target = e.URL + path
	}
	req, err := http.NewRequestWithContext(context.Background(), method, target, rd)
	if err != nil {
		tb.Fatalf("emulatortest: %v", err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		tb.Fatalf("emulatortest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("emulatortest: %s %s: read body: %v", method, path, err)
	}
	return resp, data
}

// TenantCounts is what GET /_emulator/tenant says the tenant holds: its
// machines and the rows of its current export snapshot.
func (e *Emu) TenantCounts(tb testing.TB) map[string]int {
	tb.Helper()
	var tn struct{ Counts map[string]int }
	resp, body := e.Get(tb, "/_emulator/tenant", "")
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tn) != nil {
		tb.Fatalf("emulatortest: tenant: %d %s", resp.StatusCode, body)
	}
	return tn.Counts
}
