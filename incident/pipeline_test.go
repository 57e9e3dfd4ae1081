package incident_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/incident"
	"github.com/mdebridge/mdebridge/mde"
	"github.com/mdebridge/mdebridge/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// handlerTransport serves requests with the emulator in memory, so that the
// whole pipeline runs in a synctest bubble with fake time.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

type staticToken string

func (s staticToken) Token(context.Context) (string, error) { return string(s), nil }

// harness is an emulated tenant, a client of it, a store and the parts to
// build pipelines over them.
type harness struct {
	t      *testing.T
	emu    *emulator.Server
	tenant *emulator.Tenant
	client *mde.Client
	db     *sqlite.DB
	dir    string
	seed   int64
}

func newHarness(t *testing.T, roles ...string) *harness {
	t.Helper()
	tn := emulator.Generate(emulator.GenerateOptions{Seed: 3, Machines: 30, Now: time.Now()})
	emu, err := emulator.New(emulator.Options{Tenant: tn})
	if err != nil {
		t.Fatal(err)
	}
	if roles == nil {
		roles = emulator.AllRoles()
	}
	app, err := emu.CreateApp(emulator.AppSpec{Roles: roles, DisplayName: "mdebridge"})
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret},
		"scope": {"https://api.securitycenter.microsoft.com/.default"}}
	req := httptest.NewRequest("POST", "https://login.microsoftonline.com/"+emu.TenantID()+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	emu.ServeHTTP(rec, req)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token: %s", rec.Body)
	}
	client, err := mde.New(mde.Options{BaseURL: "https://api.securitycenter.microsoft.com", Tokens: staticToken(tok.AccessToken),
		HTTPClient: &http.Client{Transport: handlerTransport{emu}}, MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "p.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &harness{t: t, emu: emu, tenant: tn, client: client, db: db, dir: dir}
}

func (h *harness) add(spec emulator.AlertSpec) []emulator.AlertStamp {
	h.t.Helper()
	h.seed++
	spec.Seed = h.seed
	st, err := h.tenant.AddAlerts(spec)
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

func (h *harness) change(ch emulator.AlertChange) []emulator.AlertStamp {
	h.t.Helper()
	h.seed++
	ch.Seed = h.seed
	st, err := h.tenant.ChangeAlerts(ch)
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

func (h *harness) pipeline(o incident.Options) *incident.Pipeline {
	h.t.Helper()
	if o.Source == nil {
		o.Source = h.client
	}
	o.Store = h.db
	p, err := incident.New(o)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// running is a pipeline running in the background.
type running struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	err    error
}

func start(p *incident.Pipeline) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel}
	r.wg.Go(func() { r.err = p.Run(ctx) })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	r.wg.Wait()
	if r.err != nil {
		t.Errorf("pipeline: %v", r.err)
	}
}

// memSink keeps what it receives; fail, when set, refuses events.
type memSink struct {
	name string
	mu   sync.Mutex
	got  []mdebridge.StoredEvent
	fail func(mdebridge.StoredEvent) error
}

func (s *memSink) Name() string { return s.name }
func (s *memSink) Close() error { return nil }
func (s *memSink) Deliver(_ context.Context, evs []mdebridge.StoredEvent) (mdebridge.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range evs {
		if s.fail != nil {
			if err := s.fail(e); err != nil {
				return mdebridge.Delivery{Handled: i}, err
			}
		}
		s.got = append(s.got, e)
	}
	return mdebridge.Delivery{Handled: len(evs)}, nil
}

func (s *memSink) events() []mdebridge.StoredEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// delivered is what a sink got, per alert: the lastUpdateTime of each
// version, in the order delivered, and whether the first was a create.
type delivered struct {
	creates  map[string]int
	versions map[string][]time.Time
	origins  map[string][]string
	seqs     []int64
}

func summarize(t *testing.T, evs []mdebridge.StoredEvent) delivered {
	t.Helper()
	d := delivered{creates: map[string]int{}, versions: map[string][]time.Time{}, origins: map[string][]string{}}
	for _, e := range evs {
		var b struct {
			Mdebridge struct {
				Event struct {
					Kind, Origin string
				} `json:"event"`
				Alert struct {
					ID             string    `json:"id"`
					LastUpdateTime time.Time `json:"lastUpdateTime"`
				} `json:"alert"`
			} `json:"mdebridge"`
		}
		if err := json.Unmarshal(e.Body, &b); err != nil {
			t.Fatalf("event %d: %v", e.Seq, err)
		}
		id := b.Mdebridge.Alert.ID
		if b.Mdebridge.Event.Kind == "create" {
			d.creates[id]++
			if len(d.versions[id]) > 0 {
				t.Errorf("alert %s: a create after an update", id)
			}
		}
		d.versions[id] = append(d.versions[id], b.Mdebridge.Alert.LastUpdateTime)
		d.origins[id] = append(d.origins[id], b.Mdebridge.Event.Origin)
		d.seqs = append(d.seqs, e.Seq)
	}
	return d
}

// check holds a sink's events to the delivery promise: every alert of
// want created exactly once, then each of its versions in order, once.
func (d delivered) check(t *testing.T, want map[string][]time.Time) {
	t.Helper()
	if !slices.IsSorted(d.seqs) || len(slices.Compact(slices.Clone(d.seqs))) != len(d.seqs) {
		t.Errorf("events out of order or repeated")
	}
	missed, dup := 0, 0
	for id, versions := range want {
		switch n := d.creates[id]; {
		case n == 0:
			missed++
		case n > 1:
			dup++
		}
		if !slices.EqualFunc(d.versions[id], versions, time.Time.Equal) {
			t.Errorf("alert %s: delivered versions %v, want %v", id, d.versions[id], versions)
		}
	}
	if missed > 0 || dup > 0 {
		t.Errorf("%d of %d alerts missed, %d created more than once", missed, len(want), dup)
	}
}

func record(want map[string][]time.Time, st []emulator.AlertStamp) {
	for _, s := range st {
		want[s.ID] = append(want[s.ID], s.LastUpdateTime)
	}
}

// TestEveryAlertOnceEveryUpdateInOrder is the burst case at small scale:
// a burst larger than a page sharing one timestamp, alerts one by one,
// and updates, some while pages are read.
func TestEveryAlertOnceEveryUpdateInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		sink := &memSink{name: "mem"}
		p := h.pipeline(incident.Options{Sinks: []mdebridge.EventSink{sink}, PageSize: 120})
		want := map[string][]time.Time{}
		record(want, h.add(emulator.AlertSpec{Count: 300, SharedTimestamp: true}))
		r := start(p)
		time.Sleep(time.Second)
		record(want, h.add(emulator.AlertSpec{Count: 100}))
		time.Sleep(10 * time.Second)
		var ids []string
		for id := range want {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		record(want, h.change(emulator.AlertChange{IDs: ids[:150], Status: "InProgress", SharedTimestamp: true}))
		time.Sleep(10 * time.Second)
		record(want, h.change(emulator.AlertChange{IDs: ids[100:130]}))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		r.stop(t)
		summarize(t, sink.events()).check(t, want)
	})
}

// pageHook lets a test act between the pages a pass reads.
type pageHook struct {
	mdebridge.AlertSource
	after func(call int, alerts []mdebridge.Alert)
	calls int
}

func (h *pageHook) ListAlertsPage(ctx context.Context, q mdebridge.AlertPageQuery) ([]mdebridge.Alert, int, error) {
	as, n, err := h.AlertSource.ListAlertsPage(ctx, q)
	h.calls++
	if err == nil && h.after != nil {
		h.after(h.calls, as)
	}
	return as, n, err
}

// TestTiesMovingBetweenPages: while a burst sharing one timestamp is read
// page by page, alerts already read are updated and move to the end of the
// order. Paging by $skip alone would then skip unread ones: the re-read
// margin covers a few moves between two pages, the sweep any number.
func TestTiesMovingBetweenPages(t *testing.T) {
	for _, tc := range []struct {
		name  string
		moved int
		sweep time.Duration
		wait  time.Duration
	}{
		{"within the margin", 8, time.Hour, 12 * time.Second},
		{"beyond it, until the sweep", 30, time.Minute, 75 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t)
				sink := &memSink{name: "mem"}
				want := map[string][]time.Time{}
				record(want, h.add(emulator.AlertSpec{Count: 300, SharedTimestamp: true}))
				hook := &pageHook{AlertSource: h.client}
				hook.after = func(call int, as []mdebridge.Alert) {
					if call <= 3 && len(as) > tc.moved {
						var read []string
						for _, a := range as[len(as)-tc.moved:] {
							read = append(read, a.ID)
						}
						record(want, h.change(emulator.AlertChange{IDs: read, Comment: fmt.Sprintf("moved on page %d", call)}))
					}
				}
				p := h.pipeline(incident.Options{Source: hook, Sinks: []mdebridge.EventSink{sink}, PageSize: 100, SweepInterval: tc.sweep})
				r := start(p)
				time.Sleep(tc.wait)
				synctest.Wait()
				r.stop(t)
				summarize(t, sink.events()).check(t, want)
			})
		})
	}
}

// TestBurstOfManyPages: a burst sharing one timestamp many pages long is
// read at nine tenths of a page per call at least.
func TestBurstOfManyPages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		sink := &memSink{name: "mem"}
		want := map[string][]time.Time{}
		record(want, h.add(emulator.AlertSpec{Count: 360, SharedTimestamp: true}))
		p := h.pipeline(incident.Options{Sinks: []mdebridge.EventSink{sink}, PageSize: 40, SweepInterval: time.Hour})
		r := start(p)
		time.Sleep(4 * time.Second)
		synctest.Wait()
		r.stop(t)
		summarize(t, sink.events()).check(t, want)
		if n := h.emu.Stats().Calls["GET /api/alerts"]; n > 360/36+2 {
			t.Errorf("%d calls for 360 alerts in pages of 40", n)
		}
	})
}

// TestLateAlertsAreSwept: an alert that becomes visible with a stamp
// behind the watermark is found by the next sweep.
func TestLateAlertsAreSwept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		sink := &memSink{name: "mem"}
		p := h.pipeline(incident.Options{Sinks: []mdebridge.EventSink{sink}})
		want := map[string][]time.Time{}
		r := start(p)
		time.Sleep(time.Second)
		record(want, h.add(emulator.AlertSpec{Count: 5}))
		late := h.add(emulator.AlertSpec{Count: 2, VisibleAfter: 90 * time.Second}) // stamped now, shown in 90 s
		record(want, late)
		time.Sleep(30 * time.Second)
		record(want, h.add(emulator.AlertSpec{Count: 5})) // the watermark moves past the late ones
		back := h.add(emulator.AlertSpec{Count: 1, LastUpdateTime: time.Now().Add(-4 * time.Minute)})
		record(want, back)
		time.Sleep(10 * time.Second)
		if d := summarize(t, sink.events()); d.creates[late[0].ID] != 0 || d.creates[back[0].ID] != 0 {
			t.Fatal("late alerts seen before they were visible or before a sweep")
		}
		time.Sleep(3 * time.Minute) // the alerts show; a sweep runs every minute
		synctest.Wait()
		r.stop(t)
		summarize(t, sink.events()).check(t, want)
	})
}

// TestIdlePollIsOneCall: with nothing new, a poll is one call.
func TestIdlePollIsOneCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		h.add(emulator.AlertSpec{Count: 50})
		p := h.pipeline(incident.Options{SweepInterval: time.Hour})
		r := start(p)
		time.Sleep(2 * time.Second) // the first poll
		h.emu.ResetStats()
		time.Sleep(60 * time.Second)
		synctest.Wait()
		r.stop(t)
		if n := h.emu.Stats().Calls["GET /api/alerts"]; n != 12 {
			t.Errorf("%d calls in 12 idle polls", n)
		}
	})
}

// crashingStore fails the ingest of the page after the n-th, as a process
// killed during it would leave the store: without that page.
type crashingStore struct {
	*sqlite.DB
	n      int
	pages  int
	cancel context.CancelFunc
}

func (s *crashingStore) IngestAlerts(ctx context.Context, as []mdebridge.Alert, o mdebridge.IngestOptions) (mdebridge.IngestResult, error) {
	if len(as) > 0 {
		s.pages++
		if s.pages > s.n {
			s.cancel()
			return mdebridge.IngestResult{}, errors.New("killed")
		}
	}
	return s.DB.IngestAlerts(ctx, as, o)
}

// TestRestartMidBurst: the process dies in the middle of a burst; the next
// one takes over and neither misses nor repeats anything.
func TestRestartMidBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		want := map[string][]time.Time{}
		record(want, h.add(emulator.AlertSpec{Count: 450, SharedTimestamp: true}))
		record(want, h.add(emulator.AlertSpec{Count: 150}))
		sink := &memSink{name: "mem"}
		ctx, cancel := context.WithCancel(context.Background())
		cs := &crashingStore{DB: h.db, n: 2, cancel: cancel}
		p, err := incident.New(incident.Options{Source: h.client, Store: cs, Sinks: []mdebridge.EventSink{sink}, PageSize: 120, Owner: "host:1"})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Run(ctx); err != nil {
			t.Fatal(err)
		}
		first := len(sink.events())
		if first == 0 || first >= 600 {
			t.Fatalf("%d events before the crash", first)
		}
		// The next process: its lease is stale only after StaleAfter, as the
		// dead one's host is not this one.
		p2 := h.pipeline(incident.Options{Sinks: []mdebridge.EventSink{sink}, PageSize: 120, Owner: "other:2", StaleAfter: 10 * time.Second})
		r := start(p2)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		r.stop(t)
		summarize(t, sink.events()).check(t, want)
	})
}

// TestSlowOrFailingSinkBlocksNobody: a sink that fails does not hold up
// another, and gets everything once it recovers.
func TestSlowOrFailingSinkBlocksNobody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		good := &memSink{name: "good"}
		var mu sync.Mutex
		down := true
		bad := &memSink{name: "bad", fail: func(mdebridge.StoredEvent) error {
			mu.Lock()
			defer mu.Unlock()
			if down {
				return errors.New("connection refused")
			}
			return nil
		}}
		p := h.pipeline(incident.Options{Sinks: []mdebridge.EventSink{bad, good}})
		want := map[string][]time.Time{}
		record(want, h.add(emulator.AlertSpec{Count: 20}))
		r := start(p)
		time.Sleep(10 * time.Second)
		if n := len(good.events()); n != 20 {
			t.Errorf("the good sink has %d of 20 events while the other fails", n)
		}
		mu.Lock()
		down = false
		mu.Unlock()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		r.stop(t)
		summarize(t, bad.events()).check(t, want)
		summarize(t, good.events()).check(t, want)
	})
}

// TestMirrorBothWaysWithoutEcho: a change made in mdebridge reaches MDE and
// its echo makes no event; a change made in MDE flows back.
func TestMirrorBothWaysWithoutEcho(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		sink := &memSink{name: "mem"}
		p := h.pipeline(incident.Options{Sinks: []mdebridge.EventSink{sink}, Mirror: true})
		st := h.add(emulator.AlertSpec{Count: 2})
		r := start(p)
		time.Sleep(10 * time.Second)
		a, err := h.db.GetAlert(t.Context(), st[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		inc, err := p.Service().ChangeIncident(t.Context(), a.IncidentRef, mdebridge.IncidentChange{
			AlertUpdate: mdebridge.AlertUpdate{Status: "Resolved", Classification: "FalsePositive", Determination: "NotMalicious", Comment: "benign test"},
			Author:      "ana@contoso.com"})
		if err != nil {
			t.Fatal(err)
		}
		if inc.Status != "Resolved" || inc.Mirror != nil {
			t.Errorf("after the change: %s, mirror %+v", inc.Status, inc.Mirror)
		}
		time.Sleep(2 * time.Minute) // polls and sweeps see the echo
		// In MDE, the alert is now resolved, with the comment.
		raw := h.alertJSON(st[0].ID)
		if raw["status"] != "Resolved" || raw["determination"] != "NotMalicious" || !strings.Contains(fmt.Sprint(raw["comments"]), "benign test") {
			t.Errorf("MDE's alert: %v", raw)
		}
		h.change(emulator.AlertChange{IDs: []string{st[0].ID}, AssignedTo: "tier2@contoso.com"})
		time.Sleep(10 * time.Second)
		synctest.Wait()
		r.stop(t)
		d := summarize(t, sink.events())
		if diff := strings.Join(d.origins[st[0].ID], ","); diff != "mde,mdebridge,mde" {
			t.Errorf("events of the changed alert: %s (create, the change made here, the change made in MDE)", diff)
		}
		if len(d.origins[st[1].ID]) != 1 {
			t.Errorf("the other alert: %v", d.origins[st[1].ID])
		}
	})
}

func (h *harness) alertJSON(id string) map[string]any {
	a, err := h.client.GetAlert(h.t.Context(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(a.Raw, &m)
	return m
}

// TestSecondProcessStandsBy: one pipeline per store.
func TestSecondProcessStandsBy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		h.add(emulator.AlertSpec{Count: 3})
		a, b := &memSink{name: "mem"}, &memSink{name: "mem"}
		r1 := start(h.pipeline(incident.Options{Sinks: []mdebridge.EventSink{a}, Owner: "h:1"}))
		time.Sleep(time.Second)
		r2 := start(h.pipeline(incident.Options{Sinks: []mdebridge.EventSink{b}, Owner: "h2:2"}))
		time.Sleep(30 * time.Second)
		if len(a.events()) != 3 || len(b.events()) != 0 {
			t.Errorf("both ran: %d and %d events", len(a.events()), len(b.events()))
		}
		r1.stop(t) // releases the lease: the other takes over
		h.add(emulator.AlertSpec{Count: 2})
		time.Sleep(time.Minute)
		synctest.Wait()
		r2.stop(t)
		if len(b.events()) != 2 {
			t.Errorf("the stand-by got %d events after taking over, want the 2 new ones", len(b.events()))
		}
	})
}

// TestMissingPermissionBacksOff: a 403 is reported, and not asked again
// every five seconds.
func TestMissingPermissionBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, "Machine.Read.All")
		p := h.pipeline(incident.Options{})
		r := start(p)
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		r.stop(t)
		if n := h.emu.Stats().Calls["GET /api/alerts"]; n > 15 {
			t.Errorf("%d calls in 10 minutes of 403s", n)
		}
	})
}
