package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/sqlite"
	"github.com/mdebridge/mdebridge/storetest"
	"github.com/mdebridge/mdebridge/web"
)

func newServer(t *testing.T, syncFn func(context.Context) (*mdebridge.SyncRun, error)) (*httptest.Server, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "w.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var ms []mdebridge.Machine
	for i := range 250 {
		ms = append(ms, storetest.Machine(i))
	}
	ms = append(ms, storetest.Machine(900, func(m *mdebridge.Machine) { m.ComputerDNSName = "twin.a.local" }),
		storetest.Machine(901, func(m *mdebridge.Machine) { m.ComputerDNSName = "twin.b.local" }))
	if err := db.UpsertMachines(t.Context(), 1, ms); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "mdebridge_test_total", Help: "t"}))
	s, err := web.New(web.Options{Machines: db, Runs: db, Status: db, Sync: syncFn, Gatherer: reg, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() { srv.Close(); s.Wait() })
	return srv, db
}

func get(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v in %s", url, err, body)
		}
	}
	return resp.StatusCode
}

type page struct {
	Items []map[string]any `json:"items"`
	Total int              `json:"total"`
	Next  *string          `json:"next"`
}

func TestListMachines(t *testing.T) {
	srv, _ := newServer(t, nil)
	var p page
	if code := get(t, srv.URL+"/api/v1/machines", &p); code != 200 || p.Total != 252 || len(p.Items) != 100 || p.Next == nil {
		t.Fatalf("default page: %d, total %d, %d items, next %v", code, p.Total, len(p.Items), p.Next)
	}
	if _, ok := p.Items[0]["computerDnsName"]; !ok {
		t.Errorf("items are not MDE objects: %v", p.Items[0])
	}
	// Follow next links to the end.
	seen := len(p.Items)
	for p.Next != nil {
		next := *p.Next
		p = page{}
		get(t, srv.URL+next, &p)
		seen += len(p.Items)
	}
	if seen != 252 {
		t.Errorf("paged through %d machines, want 252", seen)
	}
	p = page{}
	if get(t, srv.URL+"/api/v1/machines?os=linux&health=active&limit=1000", &p); p.Total != 42 || p.Next != nil {
		t.Errorf("filtered: total %d next %v", p.Total, p.Next)
	}
	var e map[string]map[string]any
	if code := get(t, srv.URL+"/api/v1/machines?limit=0", &e); code != 400 || !strings.Contains(e["error"]["message"].(string), "limit") {
		t.Errorf("bad limit: %d %v", code, e)
	}
}

func TestGetMachine(t *testing.T) {
	srv, _ := newServer(t, nil)
	var m map[string]any
	if code := get(t, srv.URL+"/api/v1/machines/host-0007", &m); code != 200 || m["computerDnsName"] != "host-0007.contoso.local" {
		t.Errorf("by host: %d %v", code, m)
	}
	var e map[string]map[string]any
	if code := get(t, srv.URL+"/api/v1/machines/twin", &e); code != 409 || len(e["error"]["candidates"].([]any)) != 2 {
		t.Errorf("ambiguous: %d %v", code, e)
	}
	e = nil
	if code := get(t, srv.URL+"/api/v1/machines/host-99999", &e); code != 404 || e["error"]["code"] != "not_found" {
		t.Errorf("not found: %d %v", code, e)
	}
}

func TestSyncStatusHealthMetrics(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	srv, db := newServer(t, func(ctx context.Context) (*mdebridge.SyncRun, error) {
		started <- struct{}{}
		<-release
		return &mdebridge.SyncRun{}, nil
	})
	resp, err := http.Post(srv.URL+"/api/v1/sync", "", nil)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("start sync: %v %v", resp.Status, err)
	}
	<-started
	if resp, _ := http.Post(srv.URL+"/api/v1/sync", "", nil); resp.StatusCode != 409 {
		t.Errorf("second sync: %s", resp.Status)
	}
	close(release)

	run := &mdebridge.SyncRun{Trigger: "test"}
	db.StartRun(t.Context(), run, func(mdebridge.SyncRun) bool { return true })
	db.SaveStep(t.Context(), run.ID, mdebridge.StepResult{Name: "machines", Status: mdebridge.StatusSucceeded, Items: 252})
	var runs struct{ Runs []mdebridge.SyncRun }
	if get(t, srv.URL+"/api/v1/sync", &runs); len(runs.Runs) != 1 || runs.Runs[0].Steps[0].Items != 252 {
		t.Errorf("runs %+v", runs)
	}
	var st struct {
		Counts map[string]int
		Steps  []mdebridge.StepResult
	}
	if get(t, srv.URL+"/api/v1/status", &st); st.Counts["machines"] != 252 || len(st.Steps) != 1 {
		t.Errorf("status %+v", st)
	}
	var h map[string]string
	if code := get(t, srv.URL+"/healthz", &h); code != 200 || h["status"] != "ok" {
		t.Errorf("healthz %d %v", code, h)
	}
	resp, _ = http.Get(srv.URL + "/metrics")
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "mdebridge_test_total") {
		t.Errorf("metrics: %s", body)
	}
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	srv, _ := newServer(t, nil)
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if code := get(t, srv.URL+"/api/v1/openapi.json", &doc); code != 200 {
		t.Fatal(code)
	}
	for _, p := range []string{"/healthz", "/metrics", "/api/v1/machines", "/api/v1/machines/{key}", "/api/v1/sync", "/api/v1/status"} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("openapi.json lacks %s", p)
		}
	}
	var e map[string]map[string]any
	if code := get(t, srv.URL+"/api/v1/nope", &e); code != 404 || !strings.Contains(e["error"]["message"].(string), "openapi.json") {
		t.Errorf("unknown route: %d %v", code, e)
	}
	if resp, _ := http.Post(srv.URL+"/api/v1/sync", "", nil); resp.StatusCode != 501 {
		t.Errorf("sync without a sync function: %s", resp.Status)
	}
}
