package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/sqlite"
	"github.com/mdebridge/mdebridge/storetest"
	"github.com/mdebridge/mdebridge/web"
)

// fakeResponder records what the REST API asks and answers as told.
type fakeResponder struct {
	mu     sync.Mutex
	actors []string
	reqs   []mdebridge.ActionRequest
	err    error
}

func (f *fakeResponder) Respond(ctx context.Context, req mdebridge.ActionRequest, _ func(mdebridge.BulkProgress)) (*mdebridge.ActionReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs, f.actors = append(f.reqs, req), append(f.actors, req.Actor)
	if f.err != nil {
		return nil, f.err
	}
	a := storetest.Action(1)
	return &mdebridge.ActionReport{RequestID: "r1", Operation: req.Operation, Outcomes: []mdebridge.ActionOutcome{{MachineID: a.MachineID, Result: mdebridge.AuditCreated, Action: &a}}}, nil
}

func (f *fakeResponder) Resume(ctx context.Context, jobID, actor string, _ func(mdebridge.BulkProgress)) (*mdebridge.ActionReport, error) {
	return &mdebridge.ActionReport{RequestID: jobID, JobID: jobID}, f.err
}

func (f *fakeResponder) CancelAction(ctx context.Context, id, comment, actor string) (*mdebridge.MachineAction, error) {
	a := storetest.Action(2, func(a *mdebridge.MachineAction) { a.Status = mdebridge.ActionStatusCancelled })
	return &a, f.err
}

func (f *fakeResponder) ImportIndicators(ctx context.Context, imp mdebridge.IndicatorImport) (*mdebridge.IndicatorImportReport, error) {
	if imp.Comment == "" {
		return nil, &mdebridge.InputError{Msg: "a comment is required"}
	}
	return &mdebridge.IndicatorImportReport{Entries: len(imp.Indicators), Imported: len(imp.Indicators)}, nil
}

func (f *fakeResponder) ImportIndicatorFile(ctx context.Context, r io.Reader, format string, imp mdebridge.IndicatorImport) (*mdebridge.IndicatorImportReport, error) {
	data, _ := io.ReadAll(r)
	n := strings.Count(string(data), "\n") - 1
	if imp.Atomic {
		return &mdebridge.IndicatorImportReport{Entries: n, Aborted: "problems"}, nil
	}
	return &mdebridge.IndicatorImportReport{Entries: n, Imported: n}, nil
}

func (f *fakeResponder) DeleteIndicators(ctx context.Context, keys []string, comment, actor string) ([]string, error) {
	return keys, f.err
}

func (f *fakeResponder) Enrich(ctx context.Context, value string) (*mdebridge.Enrichment, error) {
	return &mdebridge.Enrichment{Kind: "domain", Value: value}, f.err
}

func (f *fakeResponder) EnrichAs(ctx context.Context, kind, value string) (*mdebridge.Enrichment, error) {
	return &mdebridge.Enrichment{Kind: kind, Value: value}, f.err
}

const token = "responder-token-0123456789abcdef"

func newResponseServer(t *testing.T, tok string, log io.Writer) (*httptest.Server, *fakeResponder, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "w.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.UpsertMachines(t.Context(), 1, []mdebridge.Machine{storetest.Machine(0), storetest.Machine(1)})
	var actions []mdebridge.MachineAction
	for i := range 5 {
		actions = append(actions, storetest.Action(i))
	}
	db.UpsertMachineActions(t.Context(), actions)
	db.UpsertIndicators(t.Context(), 1, []mdebridge.Indicator{storetest.Indicator(0), storetest.Indicator(1)})
	db.AppendAudit(t.Context(), &mdebridge.AuditEntry{Actor: "alice", Operation: "isolate", RequestID: "r0", Result: "created"})
	fr := &fakeResponder{}
	if log == nil {
		log = io.Discard
	}
	s, err := web.New(web.Options{Machines: db, Runs: db, Status: db, Logger: slog.New(slog.NewTextHandler(log, nil)),
		Response: web.ResponseOptions{Responder: fr, Actions: db, Jobs: db, Audit: db, Indicators: db, Token: tok}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, fr, db
}

func call(t *testing.T, method, url, tok, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestWritesNeedTheResponderToken(t *testing.T) {
	var log bytes.Buffer
	srv, fr, _ := newResponseServer(t, token, &log)
	isolate := `{"operation":"isolate","targets":["host-0000"],"comment":"contain"}`
	for _, tok := range []string{"", "wrong-token", strings.ToUpper(token)} {
		if code, body := call(t, "POST", srv.URL+"/api/v1/actions", tok, isolate); code != 401 {
			t.Errorf("token %q: %d %v", tok, code, body)
		}
	}
	if len(fr.reqs) != 0 {
		t.Fatal("a request got through without the token")
	}
	code, body := call(t, "POST", srv.URL+"/api/v1/actions", token, isolate)
	if code != 200 || body["report"] == nil || len(fr.reqs) != 1 || !strings.HasPrefix(fr.actors[0], "rest api (") {
		t.Fatalf("with the token: %d %v %v", code, body, fr.actors)
	}
	for path, method := range map[string]string{"/api/v1/actions/x/cancel": "POST", "/api/v1/jobs/j/resume": "POST",
		"/api/v1/indicators": "POST", "/api/v1/indicators/import": "POST", "/api/v1/indicators/1000": "DELETE"} {
		if code, _ := call(t, method, srv.URL+path, "", `{}`); code != 401 {
			t.Errorf("%s %s without a token: %d", method, path, code)
		}
	}
	if strings.Contains(log.String(), token) {
		t.Error("the token is in the log")
	}
	// Without a configured token, writes are off.
	off, fr2, _ := newResponseServer(t, "", nil)
	if code, body := call(t, "POST", off.URL+"/api/v1/actions", token, isolate); code != 403 || len(fr2.reqs) != 0 {
		t.Errorf("writes off: %d %v", code, body)
	}
}

func TestResponseWriteErrors(t *testing.T) {
	srv, fr, _ := newResponseServer(t, token, nil)
	if code, _ := call(t, "POST", srv.URL+"/api/v1/actions", token, `{"operation":"isolate","bogus":1}`); code != 400 {
		t.Errorf("unknown field: %d", code)
	}
	for _, tc := range []struct {
		err  error
		code int
	}{
		{&mdebridge.InputError{Msg: "a comment is required"}, 400},
		{&mdebridge.NotFoundError{Kind: "machine", Key: "x", Near: []string{"y"}}, 404},
		{&mdebridge.AmbiguousError{Key: "x", Candidates: []string{"a", "b"}}, 409},
		{&mdebridge.PermissionError{Missing: []string{"Machine.Isolate"}}, 424},
		{errors.New("MDE is down"), 502},
	} {
		fr.err = tc.err
		code, body := call(t, "POST", srv.URL+"/api/v1/actions", token, `{"operation":"isolate","targets":["x"],"comment":"c"}`)
		if code != tc.code {
			t.Errorf("%v: %d %v", tc.err, code, body)
		}
	}
	fr.err = nil
	if code, _ := call(t, "POST", srv.URL+"/api/v1/indicators", token, `{"indicators":[{"indicatorValue":"a.example"}]}`); code != 400 {
		t.Errorf("indicators without a comment: %d", code)
	}
	if code, body := call(t, "POST", srv.URL+"/api/v1/indicators/import?comment=x&atomic=true", token, "value\na\nb\n"); code != 422 {
		t.Errorf("atomic import with problems: %d %v", code, body)
	}
	if code, body := call(t, "POST", srv.URL+"/api/v1/indicators/import?comment=x", token, "value\na\nb\n"); code != 200 || body["report"].(map[string]any)["imported"].(float64) != 2 {
		t.Errorf("import: %d %v", code, body)
	}
	if code, body := call(t, "DELETE", srv.URL+"/api/v1/indicators/1000?comment=gone", token, ""); code != 200 || body["deleted"] == nil {
		t.Errorf("delete: %d %v", code, body)
	}
}

func TestResponseReads(t *testing.T) {
	srv, _, _ := newResponseServer(t, token, nil)
	var p struct {
		Items []map[string]any
		Total int
	}
	if code := get(t, srv.URL+"/api/v1/actions?machine=host-0001&limit=10", &p); code != 200 || p.Total == 0 || p.Items[0]["machineId"] == nil {
		t.Errorf("actions: %d %+v", code, p)
	}
	a := storetest.Action(3)
	var one map[string]any
	if code := get(t, srv.URL+"/api/v1/actions/"+a.ID, &one); code != 200 || one["id"] != a.ID {
		t.Errorf("one action: %d %v", code, one)
	}
	if code := get(t, srv.URL+"/api/v1/actions/nope", nil); code != 404 {
		t.Errorf("unknown action: %d", code)
	}
	p.Items = nil
	if code := get(t, srv.URL+"/api/v1/indicators?action=block", &p); code != 200 || p.Total != 1 {
		t.Errorf("indicators: %d %+v", code, p)
	}
	var audit struct{ Entries []mdebridge.AuditEntry }
	if code := get(t, srv.URL+"/api/v1/audit?actor=alice", &audit); code != 200 || len(audit.Entries) != 1 {
		t.Errorf("audit: %d %+v", code, audit)
	}
	var jobs struct{ Jobs []mdebridge.BulkJob }
	if code := get(t, srv.URL+"/api/v1/jobs", &jobs); code != 200 || jobs.Jobs == nil {
		t.Errorf("jobs: %d %+v", code, jobs)
	}
	var e mdebridge.Enrichment
	if code := get(t, srv.URL+"/api/v1/enrich/evil.example?kind=domain", &e); code != 200 || e.Value != "evil.example" {
		t.Errorf("enrich: %d %+v", code, e)
	}
	var doc struct {
		Paths      map[string]any
		Components struct{ SecuritySchemes map[string]any }
	}
	get(t, srv.URL+"/api/v1/openapi.json", &doc)
	for _, p := range []string{"/api/v1/actions", "/api/v1/actions/{id}/cancel", "/api/v1/jobs/{id}/resume", "/api/v1/audit",
		"/api/v1/indicators", "/api/v1/indicators/import", "/api/v1/indicators/{key}", "/api/v1/enrich/{value}"} {
		if doc.Paths[p] == nil {
			t.Errorf("openapi.json lacks %s", p)
		}
	}
	if doc.Components.SecuritySchemes["responderToken"] == nil {
		t.Error("openapi.json lacks the responder token scheme")
	}
}
