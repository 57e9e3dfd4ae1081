package mde_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/mde"
	"github.com/mdebridge/mdebridge/ratelimit"
)

// handlerTransport serves requests with an http.Handler in memory, so tests
// can run under synctest with fake time.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

type staticToken string

func (s staticToken) Token(context.Context) (string, error) { return string(s), nil }

func newClient(t *testing.T, h http.Handler, opts ...func(*mde.Options)) *mde.Client {
	t.Helper()
	o := mde.Options{
		BaseURL:    "https://api.securitycenter.microsoft.com",
		Tokens:     staticToken("tok"),
		HTTPClient: &http.Client{Transport: handlerTransport{h}},
	}
	for _, f := range opts {
		f(&o)
	}
	c, err := mde.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClassify(t *testing.T) {
	tests := []struct {
		status int
		err    error
		want   mde.Class
	}{
		{200, nil, mde.OK}, {201, nil, mde.OK}, {204, nil, mde.OK},
		{400, nil, mde.Permanent}, {401, nil, mde.Permanent}, {403, nil, mde.Permanent}, {404, nil, mde.Permanent}, {405, nil, mde.Permanent},
		{408, nil, mde.Retryable}, {429, nil, mde.Retryable}, {500, nil, mde.Retryable}, {502, nil, mde.Retryable}, {503, nil, mde.Retryable}, {504, nil, mde.Retryable},
		{0, io.ErrUnexpectedEOF, mde.Retryable},
	}
	for _, tt := range tests {
		if got := mde.Classify(tt.status, tt.err); got != tt.want {
			t.Errorf("Classify(%d, %v) = %v, want %v", tt.status, tt.err, got, tt.want)
		}
	}
}

func TestForbiddenNamesMissingRoles(t *testing.T) {
	tests := []struct {
		body string
		want []string
	}{
		{`{"error":{"code":"Forbidden","message":"The application does not have any of the required application permissions (Machine.Read.All, Machine.ReadWrite.All) to access the resource.","target":"x"}}`,
			[]string{"Machine.Read.All", "Machine.ReadWrite.All"}},
		{`{"error":{"code":"Forbidden","message":"Missing application roles. API required roles: Machine.Read.All,Machine.ReadWrite.All, application roles: Machine.Isolate.","target":"x"}}`,
			[]string{"Machine.Read.All", "Machine.ReadWrite.All"}},
		{`{"error":{"code":"Forbidden","message":"something else","target":"x"}}`, []string{"Machine.Read.All", "Machine.ReadWrite.All"}},
		{``, []string{"Machine.Read.All", "Machine.ReadWrite.All"}},
	}
	for _, tt := range tests {
		c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(403)
			io.WriteString(w, tt.body)
		}))
		err := c.ListMachines(t.Context(), func([]mdebridge.Machine) error { return nil })
		var pe *mdebridge.PermissionError
		if !errors.As(err, &pe) {
			t.Fatalf("error %v is not a PermissionError", err)
		}
		if diff := cmp.Diff(tt.want, pe.Missing); diff != "" {
			t.Errorf("missing roles (-want +got):\n%s", diff)
		}
		if !strings.Contains(err.Error(), "Machine.Read.All") {
			t.Errorf("message does not name the permission: %v", err)
		}
	}
}

func TestUnauthorizedIsAPermissionError(t *testing.T) {
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(401) }))
	_, err := c.GetMachine(t.Context(), "x")
	var pe *mdebridge.PermissionError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("got %v, want a permission error about the rejected token", err)
	}
}

func TestNotFound(t *testing.T) {
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		io.WriteString(w, `{"error":{"code":"ResourceNotFound","message":"Machine nope was not found","target":"|a."}}`)
	}))
	_, err := c.GetMachine(t.Context(), "nope")
	if !errors.Is(err, mdebridge.ErrNotFound) || !strings.Contains(err.Error(), "Machine nope was not found") {
		t.Fatalf("got %v", err)
	}
	// An empty tenant answers 404 to the list: that is no machines, not an error.
	got := 0
	if err := c.ListMachines(t.Context(), func(ms []mdebridge.Machine) error { got += len(ms); return nil }); err != nil || got != 0 {
		t.Fatalf("list on 404: %v, %d machines", err, got)
	}
}

// machinesServer serves n machines like the service: $top/$skip, no nextLink
// when $top is given.
func machinesServer(n int, calls *int, mu *sync.Mutex) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		*calls++
		mu.Unlock()
		top, _ := strconv.Atoi(r.URL.Query().Get("$top"))
		skip, _ := strconv.Atoi(r.URL.Query().Get("$skip"))
		var items []string
		for i := skip; i < n && i < skip+top; i++ {
			items = append(items, fmt.Sprintf(`{"id":"%040x","computerDnsName":"m%d","rbacGroupId":%d,"lastSeen":"2026-11-20T10:00:00.1234567Z"}`, i, i, i%7))
		}
		fmt.Fprintf(w, `{"@odata.context":"https://%s/api/$metadata#Machines","value":[%s]}`, r.Host, strings.Join(items, ","))
	}
}

func TestListMachinesPages(t *testing.T) {
	for _, tc := range []struct{ n, wantCalls int }{{0, 1}, {9999, 1}, {10000, 2}, {25000, 3}, {100000, 11}} {
		var mu sync.Mutex
		calls := 0
		c := newClient(t, machinesServer(tc.n, &calls, &mu), func(o *mde.Options) { o.Limits = func(string) []ratelimit.Window { return nil } })
		ids := map[string]bool{}
		err := c.ListMachines(t.Context(), func(ms []mdebridge.Machine) error {
			for _, m := range ms {
				ids[m.ID] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != tc.n || calls != tc.wantCalls {
			t.Errorf("%d machines: got %d in %d calls, want %d calls", tc.n, len(ids), calls, tc.wantCalls)
		}
	}
}

func TestListCountsCallsInContext(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	c := newClient(t, machinesServer(15000, &calls, &mu))
	var counter mdebridge.APICalls
	ctx := mdebridge.WithAPICalls(t.Context(), &counter)
	if err := c.ListMachines(ctx, func([]mdebridge.Machine) error { return nil }); err != nil {
		t.Fatal(err)
	}
	by, total := counter.Snapshot()
	if total != 2 || by["GET /api/machines"] != 2 {
		t.Errorf("counted %v", by)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		calls := 0
		inner := machinesServer(3, &calls, &mu)
		var times []time.Time
		c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			times = append(times, time.Now())
			if len(times) == 1 {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(429)
				io.WriteString(w, `{"error":{"code":"TooManyRequests","message":"API calls quota exceeded! maximum allowed 100 per 00:01:00","target":"x"}}`)
				return
			}
			inner(w, r)
		}))
		if err := c.ListMachines(t.Context(), func([]mdebridge.Machine) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if len(times) != 2 || times[1].Sub(times[0]) != 7*time.Second {
			t.Fatalf("calls at %v, want a retry 7s after the 429", times)
		}
	})
}

func TestRetriesThenClearError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tests := []struct {
			name    string
			handler http.HandlerFunc
			want    []string
			is      error
		}{
			{"5xx storm", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }, []string{"gave up after 6 attempts", "503"}, mde.ErrTransient},
			{"malformed JSON", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"value":[{"id":`) }, []string{"GET /api/machines page 1: malformed response"}, nil},
			{"truncated body", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "1000")
				io.WriteString(w, `{"value":[`)
			}, []string{"GET /api/machines page 1", "malformed"}, nil},
			{"no value", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"error":"odd"}`) }, []string{`no "value" array`}, nil},
			{"wrong type", func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"value":[{"id":"a","isAadJoined":"yes"}]}`)
			}, []string{"page 1", "machine 1 of the page"}, nil},
		}
		for _, tt := range tests {
			attempts := 0
			c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { attempts++; tt.handler(w, r) }))
			err := c.ListMachines(t.Context(), func([]mdebridge.Machine) error { return nil })
			if err == nil {
				t.Fatalf("%s: no error", tt.name)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q lacks %q", tt.name, err, w)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("%s: error %v is not %v", tt.name, err, tt.is)
			}
			if tt.name != "wrong type" && attempts != 6 {
				t.Errorf("%s: %d attempts, want 6", tt.name, attempts)
			}
		}
	})
}

func TestLimiterKeepsUnderTheLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var stamps []time.Time
		c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			stamps = append(stamps, time.Now())
			io.WriteString(w, `{"id":"a"}`)
		}))
		start := time.Now()
		for range 150 {
			if _, err := c.GetMachine(t.Context(), "a"); err != nil {
				t.Fatal(err)
			}
		}
		// No 60-second window may hold more than 100 calls.
		for i := 100; i < len(stamps); i++ {
			if d := stamps[i].Sub(stamps[i-100]); d < time.Minute {
				t.Fatalf("calls %d and %d only %v apart", i-100, i, d)
			}
		}
		if el := time.Since(start); el > 2*time.Minute {
			t.Errorf("150 calls took %v", el)
		}
	})
}

func TestNextLinkLoopRefused(t *testing.T) {
	n := 0
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		fmt.Fprintf(w, `{"value":[{"id":"m%d"}],"@odata.nextLink":"https://evil.example/api/machines?$skip=1"}`, n)
	}))
	err := c.ListMachines(t.Context(), func([]mdebridge.Machine) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "nextLink loop") {
		t.Fatalf("got %v", err)
	}
}

func TestNextLinkStaysOnConfiguredHost(t *testing.T) {
	var hosts []string
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hosts = append(hosts, r.URL.Host)
		if r.URL.Query().Get("$skiptoken") == "" {
			io.WriteString(w, `{"value":[{"id":"a"}],"@odata.nextLink":"https://other.example/api/machines?$skiptoken=2"}`)
			return
		}
		io.WriteString(w, `{"value":[{"id":"b"}]}`)
	}))
	n := 0
	if err := c.ListMachines(t.Context(), func(ms []mdebridge.Machine) error { n += len(ms); return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 2 || hosts[1] != "api.securitycenter.microsoft.com" {
		t.Fatalf("got %d machines, hosts %v", n, hosts)
	}
}

func TestSkipIgnoredIsRefused(t *testing.T) {
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		items := make([]string, 10000)
		for i := range items {
			items[i] = fmt.Sprintf(`{"id":"%d"}`, i)
		}
		fmt.Fprintf(w, `{"value":[%s]}`, strings.Join(items, ","))
	}))
	err := c.ListMachines(t.Context(), func([]mdebridge.Machine) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "ignored $skip") {
		t.Fatalf("got %v", err)
	}
}

// Every machine payload known from Microsoft's docs, live captures and peer
// recordings must parse, keep its raw JSON and agree with it.
func TestMachineFixturesParse(t *testing.T) {
	root := filepath.Join("..", "testdata", "fixtures")
	files := []string{
		"observed/get_machine.json", "observed/get_machines.json", "observed/get_alert_machine_information.json",
		"observed/get_user_related_machines.json", "observed/get_domain_related_machines.json",
		"docs/machine-get.json", "docs/machines-list.json", "docs/alert-machine.json",
		"docs/odata-machines-filter-generic.json", "docs/odata-machines-filter-riskscore-high.json",
		"peers/graph-microsoft-endpoint-defender/GET_api_machines.json",
		"peers/graph-microsoft-endpoint-defender/GET_api_machines_6dd3f7ce_single.json",
		"peers/graph-microsoft-endpoint-defender/GET_api_machines_top1_skip0.json",
		"peers/graph-microsoft-endpoint-defender/GET_api_machines_top1_skip9_empty.json",
	}
	total := 0
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		var objs []json.RawMessage
		var page struct {
			Value *[]json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(data, &page); err == nil && page.Value != nil {
			objs = *page.Value
		} else {
			objs = []json.RawMessage{data}
		}
		for _, raw := range objs {
			m, err := mde.DecodeMachine(raw)
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			total++
			var want map[string]any
			json.Unmarshal(raw, &want)
			if m.ID != want["id"] || m.ComputerDNSName != orEmpty(want["computerDnsName"]) {
				t.Errorf("%s: id/name %q %q", f, m.ID, m.ComputerDNSName)
			}
			if ls, ok := want["lastSeen"].(string); ok && ls != "" && m.LastSeen.IsZero() {
				t.Errorf("%s: lastSeen %q lost", f, ls)
			}
			if ips, ok := want["ipAddresses"].([]any); ok && len(ips) != len(m.IPAddresses) {
				t.Errorf("%s: %d ipAddresses, want %d", f, len(m.IPAddresses), len(ips))
			}
			if string(m.Raw) != string(raw) {
				t.Errorf("%s: raw JSON not kept", f)
			}
		}
	}
	// elastic's test log: one machine per line.
	data, err := os.ReadFile(filepath.Join(root, "peers/elastic-integrations/machines.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if _, err := mde.DecodeMachine(json.RawMessage(line)); err != nil {
			t.Errorf("machines.ndjson line %d: %v", i+1, err)
		}
		total++
	}
	if total < 20 {
		t.Errorf("only %d machines parsed", total)
	}
}

func orEmpty(v any) string {
	s, _ := v.(string)
	return s
}

func TestParseTime(t *testing.T) {
	for _, s := range []string{
		"2021-01-26T20:33:57.7220239Z", "2021-01-26T20:33:57.2Z", "2019-12-18T08:02:54Z", "2021-01-25T07:27:36.052313Z",
		"2020-12-30 14:17:26", "2021-01-11 09:47:58.854", "2020-11-03 10:13:34.8476880", "2021-05-11T00:00:00+00:00", "2018-08-01Z",
	} {
		ts, err := mde.ParseTime(s)
		if err != nil || ts.Location() != time.UTC || ts.Year() < 2018 {
			t.Errorf("ParseTime(%q) = %v, %v", s, ts, err)
		}
	}
	if _, err := mde.ParseTime("yesterday"); err == nil {
		t.Error("nonsense accepted")
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2021-01-26T20:33:57.7220239Z", "2020-12-30 14:17:26", "2018-08-01Z", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := mde.ParseTime(s)
		if err == nil && ts.Location() != time.UTC {
			t.Errorf("%q parsed to a non-UTC time", s)
		}
	})
}

func FuzzDecodeMachine(f *testing.F) {
	data, _ := os.ReadFile(filepath.Join("..", "testdata", "fixtures", "observed", "get_machine.json"))
	f.Add(data)
	f.Add([]byte(`{"id":"a","rbacGroupId":"12","osBuild":null,"firstSeen":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := mde.DecodeMachine(b)
		if err == nil && m.ID == "" {
			t.Error("machine without id accepted")
		}
	})
}
