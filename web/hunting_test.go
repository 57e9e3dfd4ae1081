package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/storetest"
	"github.com/mdebridge/mdebridge/web"
)

// fakeHunter answers queries as its fields say and records them.
type fakeHunter struct {
	res     *mdebridge.HuntingResult
	err     error
	queries []string
}

func (f *fakeHunter) RunHuntingQuery(_ context.Context, q string) (*mdebridge.HuntingResult, error) {
	f.queries = append(f.queries, q)
	return f.res, f.err
}

func huntServer(t *testing.T, h mdebridge.HuntingQuerier) *httptest.Server {
	t.Helper()
	_, db := newServer(t, nil)
	s, err := web.New(web.Options{Machines: db, Runs: db, Status: db, Hunting: h, LogonUsers: db})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	if err := db.UpsertLogonUsers(t.Context(), 1, []mdebridge.LogonUser{
		storetest.LogonUser(storetest.Machine(7).ID, "contoso", "alex", time.Now().Add(-time.Hour), time.Now()),
		storetest.LogonUser(storetest.Machine(7).ID, "contoso", "adm-sam", time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour), "RemoteInteractive"),
	}); err != nil {
		t.Fatal(err)
	}
	return srv
}

func compact(raw []byte) string {
	var b bytes.Buffer
	json.Compact(&b, raw)
	return b.String()
}

func post(t *testing.T, url, body string, v any) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("POST %s: %v in %s", url, err, data)
		}
	}
	return resp, data
}

func TestHunt(t *testing.T) {
	rows := []json.RawMessage{json.RawMessage(`{"DeviceName":"ws-01","Count":3}`)}
	h := &fakeHunter{res: &mdebridge.HuntingResult{Schema: []mdebridge.HuntingColumn{{Name: "DeviceName", Type: "String"}, {Name: "Count", Type: "Int64"}}, Results: rows}}
	srv := huntServer(t, h)
	var got struct {
		Query     string
		Schema    []mdebridge.HuntingColumn
		Results   []json.RawMessage
		Truncated bool
	}
	if resp, body := post(t, srv.URL+"/api/v1/hunt", `{"query":"DeviceInfo | count"}`, &got); resp.StatusCode != 200 ||
		got.Query != "DeviceInfo | count" || len(got.Results) != 1 || compact(got.Results[0]) != compact(rows[0]) || got.Schema[1].Type != "Int64" {
		t.Fatalf("raw query: %d %s", resp.StatusCode, body)
	}
	resp, body := post(t, srv.URL+"/api/v1/hunt", `{"name":"persistence/scheduled-task","params":{"device":"ws-01","since":"2d","limit":5}}`, &got)
	if resp.StatusCode != 200 || !strings.Contains(got.Query, `"ws-01"`) || !strings.HasSuffix(got.Query, "take 5") || h.queries[1] != got.Query {
		t.Fatalf("named query: %d %s", resp.StatusCode, body)
	}
	var q struct{ Queries []struct{ Name string } }
	if code := get(t, srv.URL+"/api/v1/hunt/queries", &q); code != 200 || len(q.Queries) < 30 {
		t.Errorf("queries: %d, %d", code, len(q.Queries))
	}
}

func TestHuntErrors(t *testing.T) {
	h := &fakeHunter{}
	srv := huntServer(t, h)
	for _, tt := range []struct {
		body   string
		err    error
		status int
		code   string
	}{
		{`{"query":"x","name":"y"}`, nil, 400, "bad_request"},
		{`{"qeury":"x"}`, nil, 400, "bad_request"},
		{`{"name":"persistence/scheduled-task","params":{"since":"3w"}}`, nil, 400, "bad_request"},
		{`{"name":"file-origin"}`, nil, 400, "bad_request"},
		{`{"name":"persistance"}`, nil, 404, "not_found"},
		{`{"query":"DeviceInfo | wher"}`, &mdebridge.HuntingQueryError{Message: "A recognition error occurred.. Fix syntax errors in your query."}, 400, "bad_query"},
		{`{"query":"DeviceInfo"}`, &mdebridge.HuntingQuotaError{CPU: true, RetryAfter: 90 * time.Second}, 429, "quota"},
		{`{"query":"DeviceInfo"}`, &mdebridge.PermissionError{Missing: []string{"AdvancedQuery.Read.All"}}, 403, "permission_denied"},
		{`{"query":"DeviceInfo"}`, io.ErrUnexpectedEOF, 502, "upstream"},
	} {
		h.err, h.res = tt.err, &mdebridge.HuntingResult{}
		var e struct {
			Error struct{ Code, Message string }
		}
		resp, body := post(t, srv.URL+"/api/v1/hunt", tt.body, &e)
		if resp.StatusCode != tt.status || e.Error.Code != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.body, resp.StatusCode, body, tt.status, tt.code)
		}
		if tt.status == 429 && resp.Header.Get("Retry-After") != "90" {
			t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
		}
	}
	_, db := newServer(t, nil)
	s, _ := web.New(web.Options{Machines: db, Runs: db, Status: db})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/hunt", strings.NewReader(`{"query":"x"}`)))
	if rec.Code != 501 {
		t.Errorf("without a hunter: %d", rec.Code)
	}
}

func TestMachineLogonUsersRoute(t *testing.T) {
	srv := huntServer(t, &fakeHunter{})
	var got struct {
		MachineID string
		Items     []map[string]any
	}
	if code := get(t, srv.URL+"/api/v1/machines/host-0007/logonusers", &got); code != 200 || got.MachineID != storetest.Machine(7).ID ||
		len(got.Items) != 2 || got.Items[0]["id"] != `contoso\alex` || got.Items[0]["logonTypes"] != "Interactive" {
		t.Fatalf("%d %+v", code, got)
	}
	var e map[string]map[string]any
	if code := get(t, srv.URL+"/api/v1/machines/host-99999/logonusers", &e); code != 404 {
		t.Errorf("unknown machine: %d %v", code, e)
	}
	var doc struct{ Paths map[string]any }
	get(t, srv.URL+"/api/v1/openapi.json", &doc)
	for _, p := range []string{"/api/v1/hunt", "/api/v1/hunt/queries", "/api/v1/machines/{key}/logonusers"} {
		if doc.Paths[p] == nil {
			t.Errorf("openapi.json lacks %s", p)
		}
	}
}
