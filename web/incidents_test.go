package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/incident"
	"github.com/mdebridge/mdebridge/sqlite"
	"github.com/mdebridge/mdebridge/storetest"
	"github.com/mdebridge/mdebridge/web"
)

func incidentServer(t *testing.T, withService bool) *httptest.Server {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "i.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var as []mdebridge.Alert
	for i := range 30 {
		as = append(as, storetest.Alert(i))
	}
	if _, err := db.IngestAlerts(t.Context(), as, mdebridge.IngestOptions{GroupBy: mdebridge.GroupByAlert}); err != nil {
		t.Fatal(err)
	}
	o := web.Options{Machines: db, Runs: db, Status: db, Alerts: db, Incidents: db}
	if withService {
		svc, err := incident.NewService(incident.ServiceOptions{Store: db})
		if err != nil {
			t.Fatal(err)
		}
		o.IncidentService = svc
	}
	s, err := web.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, method, url, body string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, data)
		}
	}
	return resp.StatusCode
}

func TestAlertRoutes(t *testing.T) {
	srv := incidentServer(t, true)
	var p struct {
		Items []map[string]any `json:"items"`
		Total int              `json:"total"`
		Next  *string          `json:"next"`
	}
	if code := get(t, srv.URL+"/api/v1/alerts?severity=high&limit=3", &p); code != 200 || p.Total != 7 || len(p.Items) != 3 || p.Next == nil {
		t.Fatalf("alerts: %d %+v", code, p)
	}
	if p.Items[0]["severity"] != "High" || p.Items[0]["evidence"] == nil {
		t.Errorf("an alert is MDE's object: %v", p.Items[0])
	}
	if code := get(t, srv.URL+"/api/v1/alerts?entity=185.220.101.5", &p); code != 200 || p.Total != 1 {
		t.Errorf("by entity: %d %d", code, p.Total)
	}
	var a map[string]any
	id := storetest.Alert(4).ID
	if code := get(t, srv.URL+"/api/v1/alerts/"+id, &a); code != 200 || a["id"] != id {
		t.Errorf("one alert: %d %v", code, a)
	}
	var e struct{ Error struct{ Code string } }
	if code := get(t, srv.URL+"/api/v1/alerts/nope", &e); code != 404 || e.Error.Code != "not_found" {
		t.Errorf("unknown alert: %d %+v", code, e)
	}
	for _, bad := range []string{"?since=yesterday", "?incident=x", "?limit=0"} {
		if code := get(t, srv.URL+"/api/v1/alerts"+bad, &e); code != 400 {
			t.Errorf("%s: %d", bad, code)
		}
	}
	var inc mdebridge.Incident
	if code := send(t, "PATCH", srv.URL+"/api/v1/alerts/"+id, `{"status":"InProgress","assignedTo":"soc@contoso.com"}`, &inc); code != 200 ||
		inc.Status != "InProgress" || inc.AssignedTo != "soc@contoso.com" {
		t.Errorf("change an alert: %d %+v", code, inc)
	}
}

func TestIncidentRoutes(t *testing.T) {
	srv := incidentServer(t, true)
	var p struct {
		Items []mdebridge.Incident `json:"items"`
		Total int                  `json:"total"`
	}
	if code := get(t, srv.URL+"/api/v1/incidents?status=New", &p); code != 200 || p.Total != 30 || len(p.Items[0].AlertIDs) != 1 {
		t.Fatalf("incidents: %d %d", code, p.Total)
	}
	id := p.Items[0].ID
	base := srv.URL + "/api/v1/incidents/" + itoa(id)
	var inc mdebridge.Incident
	if code := get(t, base, &inc); code != 200 || inc.ID != id {
		t.Fatalf("incident: %d %+v", code, inc)
	}
	if code := send(t, "PATCH", base, `{"status":"Resolved","classification":"TruePositive","determination":"Malware"}`, &inc); code != 200 ||
		inc.Status != "Resolved" || inc.Determination != "Malware" {
		t.Errorf("change: %d %+v", code, inc)
	}
	if code := send(t, "POST", base+"/comments", `{"comment":"contained"}`, &inc); code != 200 || len(inc.Comments) != 1 {
		t.Errorf("comment: %d %+v", code, inc)
	}
	var evs struct{ Items []map[string]any }
	if code := get(t, base+"/events", &evs); code != 200 || len(evs.Items) != 3 {
		t.Errorf("events: %d %d", code, len(evs.Items))
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	for _, tt := range []struct {
		method, url, body string
		code              int
	}{
		{"PATCH", base, `{"determination":"Clean"}`, 400},
		{"PATCH", base, `{"status":"Closed"}`, 400},
		{"PATCH", base, `{"state":"New"}`, 400},
		{"POST", base + "/comments", `{}`, 400},
		{"PATCH", srv.URL + "/api/v1/incidents/999999", `{"status":"New"}`, 404},
		{"GET", srv.URL + "/api/v1/incidents/abc", ``, 400},
		{"GET", srv.URL + "/api/v1/incidents/999999/events", ``, 404},
	} {
		if code := send(t, tt.method, tt.url, tt.body, &e); code != tt.code {
			t.Errorf("%s %s %s: %d %+v, want %d", tt.method, tt.url, tt.body, code, e, tt.code)
		}
	}
	readOnly := incidentServer(t, false)
	if code := send(t, "PATCH", readOnly.URL+"/api/v1/incidents/1", `{"status":"New"}`, &e); code != 501 {
		t.Errorf("without a service: %d", code)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
