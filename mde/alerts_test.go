package mde_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/mde"
)

// alertObjects reads every alert object of a fixture: a list page, one
// entity, or JSON Lines.
func alertObjects(t *testing.T, file string) []json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", file))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(file, ".ndjson") {
		var out []json.RawMessage
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 || bytes.HasPrefix(line, []byte(`{"value"`)) {
				continue // the recording's empty page
			}
			out = append(out, json.RawMessage(bytes.Clone(line)))
		}
		return out
	}
	var page struct {
		Value *[]json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(data, &page); err == nil && page.Value != nil {
		return *page.Value
	}
	return []json.RawMessage{data}
}

// Every alert payload known from Microsoft's docs, live captures and peer
// recordings parses, keeps its raw JSON and agrees with it.
func TestAlertFixturesParse(t *testing.T) {
	files := []string{
		"observed/get_alert.json", "observed/get_alerts.json", "observed/get_machine_related_alerts.json",
		"observed/get_file_related_alerts.json", "observed/get_ip_related_alerts.json", "observed/get_domain_related_alerts.json",
		"observed/create_alert.json", "docs/alert-get.json", "docs/alerts-list.json", "docs/alerts-list-expand-evidence.json",
		"peers/demisto-content/first_response_alerts.json", "peers/demisto-content/second_response_alerts.json",
		"peers/demisto-content/third_response_alerts.json", "peers/elastic-integrations/alerts_expand_evidence_response.json",
		"peers/elastic-integrations/alerts_split_by_evidence.ndjson",
	}
	total, evidence := 0, 0
	for _, f := range files {
		for _, raw := range alertObjects(t, f) {
			a, err := mde.DecodeAlert(raw)
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			total++
			var want map[string]any
			json.Unmarshal(raw, &want)
			if a.ID != want["id"] || a.Title != orEmpty(want["title"]) || a.Status != orEmpty(want["status"]) || a.Severity != orEmpty(want["severity"]) {
				t.Errorf("%s: %+v", f, a)
			}
			if s, ok := want["lastUpdateTime"].(string); ok && s != "" && a.LastUpdateTime.IsZero() {
				t.Errorf("%s %s: lastUpdateTime %q lost", f, a.ID, s)
			}
			if _, ok := want["relatedUser"].(map[string]any); ok != (a.RelatedUser != nil) {
				t.Errorf("%s %s: relatedUser %v, decoded %v", f, a.ID, want["relatedUser"], a.RelatedUser)
			}
			switch ev := want["evidence"].(type) {
			case []any:
				if len(ev) != len(a.Evidence) {
					t.Errorf("%s %s: %d evidence, want %d", f, a.ID, len(a.Evidence), len(ev))
				}
			case map[string]any: // Elastic's split recordings
				if len(a.Evidence) != 1 {
					t.Errorf("%s %s: an evidence object decoded to %d entries", f, a.ID, len(a.Evidence))
				}
			}
			evidence += len(a.Evidence)
			if _, ctx := want["@odata.context"]; !ctx && !bytes.Equal(a.Raw, raw) {
				t.Errorf("%s %s: raw JSON not kept", f, a.ID)
			}
			if bytes.Contains(a.Raw, []byte("@odata.context")) {
				t.Errorf("%s %s: raw keeps the @odata.context", f, a.ID)
			}
		}
	}
	if total < 50 || evidence < 50 {
		t.Errorf("only %d alerts and %d evidence entries parsed", total, evidence)
	}
}

func TestDecodeAlertBadInput(t *testing.T) {
	tests := []struct {
		name string
		json string
		want func(a mdebridge.Alert) bool
	}{
		{"unknown enums are kept", `{"id":"a","severity":"Critical","category":"QuantumIntrusion","status":"Snoozed"}`,
			func(a mdebridge.Alert) bool {
				return a.Severity == "Critical" && a.Category == "QuantumIntrusion" && a.Status == "Snoozed"
			}},
		{"missing evidence", `{"id":"a"}`, func(a mdebridge.Alert) bool { return a.Evidence != nil && len(a.Evidence) == 0 }},
		{"null relatedUser", `{"id":"a","relatedUser":null}`, func(a mdebridge.Alert) bool { return a.RelatedUser == nil }},
		{"7-digit fractions", `{"id":"a","lastUpdateTime":"2023-04-19T13:42:14.3133333Z"}`,
			func(a mdebridge.Alert) bool {
				return a.LastUpdateTime.Equal(time.Date(2023, 4, 19, 13, 42, 14, 313333300, time.UTC))
			}},
		{"wrong types are left empty", `{"id":"a","severity":5,"evidence":"none","comments":{"x":1},"incidentId":"400","lastUpdateTime":"soon","mitreTechniques":"T1059"}`,
			func(a mdebridge.Alert) bool {
				return a.Severity == "5" && len(a.Evidence) == 0 && len(a.Comments) == 0 && a.IncidentID == 400 && a.LastUpdateTime.IsZero() &&
					cmp.Equal(a.MitreTechniques, []string{"T1059"})
			}},
		{"evidence with odd entries", `{"id":"a","evidence":[null,1,{"entityType":"File","sha1":"ab","processId":"12"}]}`,
			func(a mdebridge.Alert) bool {
				return len(a.Evidence) == 1 && a.Evidence[0].SHA1 == "ab" && a.Evidence[0].ProcessID == 12
			}},
	}
	for _, tt := range tests {
		a, err := mde.DecodeAlert(json.RawMessage(tt.json))
		if err != nil || !tt.want(a) {
			t.Errorf("%s: %+v, %v", tt.name, a, err)
		}
	}
	for _, bad := range []string{`{"title":"no id"}`, `[]`, `{"id":`, `{"id":null}`} {
		if _, err := mde.DecodeAlert(json.RawMessage(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestListAlertsPageQuery(t *testing.T) {
	var got []string
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		got = append(got, r.URL.Path, q.Get("$filter"), q.Get("$orderby"), q.Get("$top"), q.Get("$skip"), q.Get("$expand"))
		io.WriteString(w, `{"@odata.context":"x","value":[{"id":"a","lastUpdateTime":"2023-04-25T22:58:00.55Z"},{"title":"no id"},{"id":"b"}]}`)
	}))
	since := time.Date(2023, 4, 25, 22, 58, 0, 550000000, time.UTC)
	as, items, err := c.ListAlertsPage(t.Context(), mdebridge.AlertPageQuery{Since: since, Skip: 7, Top: 500, ExpandEvidence: true})
	if err != nil || items != 3 {
		t.Fatal(items, err)
	}
	if _, _, err := c.ListAlertsPage(t.Context(), mdebridge.AlertPageQuery{Since: since, Strict: true}); err != nil || got[len(got)-5] != "lastUpdateTime gt 2023-04-25T22:58:00.55Z" {
		t.Errorf("strict: %q, %v", got[len(got)-5], err)
	}
	got = got[:6]
	want := []string{"/api/alerts", "lastUpdateTime ge 2023-04-25T22:58:00.55Z", "lastUpdateTime asc", "500", "7", "evidence"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	if len(as) != 2 || as[0].ID != "a" || as[1].ID != "b" {
		t.Errorf("alerts %+v: the one without an id must be left out, the others kept", as)
	}
}

func TestUpdateAlerts(t *testing.T) {
	var calls []string
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		calls = append(calls, r.Method+" "+r.URL.Path+" "+string(body))
		if r.Method == "PATCH" {
			io.WriteString(w, `{"@odata.context":"https://h/api/$metadata#Alerts/$entity","id":"da1_2","status":"Resolved","lastUpdateTime":"2026-01-01T00:00:00.0033333Z"}`)
			return
		}
		w.WriteHeader(200)
	}))
	a, err := c.UpdateAlert(t.Context(), "da1_2", mdebridge.AlertUpdate{Status: "Resolved", Comment: "done"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != "Resolved" || string(a.Raw) != `{"id":"da1_2","status":"Resolved","lastUpdateTime":"2026-01-01T00:00:00.0033333Z"}` {
		t.Errorf("updated alert %+v raw %s", a, a.Raw)
	}
	ids := make([]string, 501)
	for i := range ids {
		ids[i] = "id" + strconv.Itoa(i)
	}
	if err := c.BatchUpdateAlerts(t.Context(), ids, mdebridge.AlertUpdate{AssignedTo: "soc@contoso.com"}); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 3 || calls[0] != `PATCH /api/alerts/da1_2 {"status":"Resolved","comment":"done"}` ||
		!strings.HasPrefix(calls[1], `POST /api/alerts/batchUpdate {"alertIds":["id0",`) || !strings.HasSuffix(calls[2], `{"alertIds":["id500"],"assignedTo":"soc@contoso.com"}`) {
		t.Errorf("calls %q", calls)
	}
	if _, err := c.UpdateAlert(t.Context(), "x", mdebridge.AlertUpdate{}); !errors.Is(err, mdebridge.ErrInvalidUpdate) {
		t.Errorf("empty update: %v", err)
	}

	denied := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(403)
		io.WriteString(w, `{"error":{"code":"Forbidden","message":"nope","target":"x"}}`)
	}))
	_, err = denied.UpdateAlert(t.Context(), "x", mdebridge.AlertUpdate{Status: "New"})
	var pe *mdebridge.PermissionError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "Alert.ReadWrite.All") {
		t.Errorf("403: %v", err)
	}
}

func FuzzDecodeAlert(f *testing.F) {
	for _, file := range []string{"observed/get_alert.json", "docs/alert-get.json"} {
		data, _ := os.ReadFile(filepath.Join("..", "testdata", "fixtures", file))
		f.Add(data)
	}
	f.Add([]byte(`{"id":"a","evidence":{"entityType":"File"},"lastUpdateTime":"2020-11-03 10:13:34.8476880"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := mde.DecodeAlert(b)
		if err != nil {
			return
		}
		if a.ID == "" || a.Evidence == nil || a.Comments == nil {
			t.Errorf("decoded %+v", a)
		}
		_ = a.State().Diff(mdebridge.AlertState{})
		_ = a.Entities()
	})
}
