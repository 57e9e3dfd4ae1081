package response_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/mde"
	"github.com/mdebridge/mdebridge/ratelimit"
	"github.com/mdebridge/mdebridge/response"
	"github.com/mdebridge/mdebridge/sqlite"
)

// The service is tested against the emulator itself, served in memory so
// that the whole conversation runs inside a testing/synctest bubble: the
// emulator's lifecycle, the client's rate limiter and the service's polling
// all read the bubble's clock, so a twenty-second action takes no time and
// every timing is exact.

// handlerTransport serves requests with an http.Handler in memory.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "https" {
		r.TLS = &tls.ConnectionState{} // the emulator writes links with the scheme it was called with
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

type staticToken string

func (s staticToken) Token(context.Context) (string, error) { return string(s), nil }

type harness struct {
	t      *testing.T
	emu    *emulator.Server
	client *mde.Client
	store  *sqlite.DB
	svc    *response.Service
}

type setup struct {
	machines int
	alerts   int
	roles    []string
	limits   func(string) []ratelimit.Window
}

// newHarness builds an emulator, a client, a store and the service; call it
// inside a synctest bubble. The store is closed when the bubble's test ends.
func newHarness(t *testing.T, st setup) *harness {
	t.Helper()
	if st.machines == 0 {
		st.machines = 60
	}
	if st.roles == nil {
		st.roles = emulator.AllRoles()
	}
	tenant := emulator.Generate(emulator.GenerateOptions{Seed: 5, Machines: st.machines, Alerts: st.alerts, Now: time.Now()})
	emu, err := emulator.New(emulator.Options{Tenant: tenant})
	if err != nil {
		t.Fatal(err)
	}
	app, err := emu.CreateApp(emulator.AppSpec{Roles: st.roles})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: handlerTransport{emu}}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret},
		"scope": {"https://api.securitycenter.microsoft.com/.default"}}
	resp, err := hc.PostForm("https://login.microsoftonline.com/"+app.TenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	client, err := mde.New(mde.Options{BaseURL: "https://api.securitycenter.microsoft.com", Tokens: staticToken(tok.AccessToken),
		HTTPClient: hc, MaxBackoff: 50 * time.Millisecond, Limits: st.limits})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "r.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var page []mdebridge.Machine
	if err := client.ListMachines(t.Context(), func(ms []mdebridge.Machine) error { page = append(page, ms...); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := db.UpsertMachines(t.Context(), 1, page); err != nil {
		t.Fatal(err)
	}
	svc, err := response.New(response.Options{Client: client, Store: db, Indicators: mdebridge.IndicatorDefaults{Action: "Audit", Expiration: 30 * 24 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, emu: emu, client: client, store: db, svc: svc}
}

// syncActions pulls the emulator's action history into the store, as the
// machine-actions sync step does (the service learns typical durations
// from it).
func (h *harness) syncActions() {
	h.t.Helper()
	err := h.client.ListMachineActions(h.t.Context(), time.Time{}, func(as []mdebridge.MachineAction) error {
		return h.store.UpsertMachineActions(h.t.Context(), as)
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// machine returns a synced machine matching keep.
func (h *harness) machine(keep func(mdebridge.Machine) bool) mdebridge.Machine {
	h.t.Helper()
	ms, _, err := h.store.FindMachines(h.t.Context(), mdebridge.MachineFilter{})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, m := range ms {
		if keep(m) {
			return m
		}
	}
	h.t.Fatal("no machine matches")
	return mdebridge.Machine{}
}

func onlineWindows(m mdebridge.Machine) bool {
	return m.HealthStatus == "Active" && m.OnboardingStatus == "Onboarded" && (m.OSPlatform == "Windows11" || m.OSPlatform == "Windows10")
}

// calls is how many calls the emulator answered on a route.
func (h *harness) calls(route string) int { return h.emu.Stats().Calls[route] }

func (h *harness) behaviour(change func(*emulator.ActionBehaviour)) {
	h.t.Helper()
	b := h.emu.ActionBehaviour()
	change(&b)
	if err := h.emu.SetActionBehaviour(b); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) audit(f mdebridge.AuditFilter) []mdebridge.AuditEntry {
	h.t.Helper()
	es, err := h.store.FindAudit(h.t.Context(), f)
	if err != nil {
		h.t.Fatal(err)
	}
	return es
}

func results(es []mdebridge.AuditEntry) string {
	var out []string
	for i := len(es) - 1; i >= 0; i-- {
		out = append(out, es[i].Result)
	}
	return strings.Join(out, ",")
}
