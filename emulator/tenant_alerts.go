package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// alertSet holds a tenant's alerts. It has a lock of its own, so that alert
// traffic (an activity generator, a burst of injected alerts) never holds
// up machine reads; when both are needed the tenant's lock is taken first.
type alertSet struct {
	mu   sync.RWMutex
	list []*alert       // in arrival order, which is the order ties are served in
	byID map[string]int // lower-case id -> index in list

	// lastStamp is the last lastUpdateTime handed out. The service stamps
	// rows as it writes them, so stamps never go back; a burst written in
	// one statement shares one.
	lastStamp      time.Time
	nextIncident   int64
	nextInvestigat int64
	incidents      map[string]openIncident // machine id -> the incident its recent alerts join
}

type openIncident struct {
	id   int64
	last time.Time
}

func (s *alertSet) init() {
	if s.byID == nil {
		s.byID = map[string]int{}
		s.incidents = map[string]openIncident{}
	}
}

func (s *alertSet) has(id string) bool {
	_, ok := s.byID[strings.ToLower(id)]
	return ok
}

// sqlTick is the resolution of the service's lastUpdateTime: SQL Server's
// datetime counts 1/300 s, which the API prints with seven digits
// (".3133333", ".8566667" in live captures).
const sqlTick = time.Second / 300

// sqlDatetime rounds t to the service's lastUpdateTime resolution.
func sqlDatetime(t time.Time) time.Time {
	u := (t.UnixNano()*3 + 5_000_000) / 10_000_000 // 1/300 s units, rounded
	return ticksTime(u)
}

// ticksTime turns 1/300 s units into a time rounded to 100 ns, as .NET
// prints a datetime converted to DateTimeOffset.
func ticksTime(u int64) time.Time {
	ns100 := (u*100_000 + 1) / 3
	return time.Unix(0, ns100*100).UTC()
}

// stampLocked returns the next lastUpdateTime at now: never before the last
// one handed out.
func (s *alertSet) stampLocked(now time.Time) time.Time {
	t := sqlDatetime(now)
	if !t.After(s.lastStamp) {
		t = sqlDatetime(s.lastStamp.Add(sqlTick))
	}
	s.lastStamp = t
	return t
}

// AlertCount is the number of alerts in the tenant, visible or not yet.
func (t *Tenant) AlertCount() int {
	t.alerts.mu.RLock()
	defer t.alerts.mu.RUnlock()
	return len(t.alerts.list)
}

func (t *Tenant) appendAlertLocked(a *alert) {
	s := &t.alerts
	s.init()
	s.byID[strings.ToLower(a.ID)] = len(s.list)
	s.list = append(s.list, a)
	if a.LastUpdateTime.After(s.lastStamp) {
		s.lastStamp = a.LastUpdateTime
	}
	if a.IncidentID.OK && a.IncidentID.V >= s.nextIncident {
		s.nextIncident = a.IncidentID.V + 1
	}
	if a.InvestigationID.OK && a.InvestigationID.V >= s.nextInvestigat {
		s.nextInvestigat = a.InvestigationID.V + 1
	}
}

// visible reports whether the API shows a at now.
func (a *alert) visible(now time.Time) bool { return !a.visibleAt.After(now) }

// selectAlerts returns, in arrival order, the alerts the API shows at now
// for which keep is true (all when keep is nil). Alerts are immutable, so
// the caller may use them after the lock is released.
func (t *Tenant) selectAlerts(now time.Time, keep func(*alert) bool) []*alert {
	t.alerts.mu.RLock()
	defer t.alerts.mu.RUnlock()
	var out []*alert
	for _, a := range t.alerts.list {
		if a.visible(now) && (keep == nil || keep(a)) {
			out = append(out, a)
		}
	}
	return out
}

// findAlert returns the alert with the given id (case-insensitive) if the
// API shows it at now.
func (t *Tenant) findAlert(id string, now time.Time) *alert {
	t.alerts.mu.RLock()
	defer t.alerts.mu.RUnlock()
	if i, ok := t.alerts.byID[strings.ToLower(id)]; ok && t.alerts.list[i].visible(now) {
		return t.alerts.list[i]
	}
	return nil
}

var errAlertNotFound = errors.New("alert not found")

// updateAlerts applies change to copies of the visible alerts with the
// given ids and stores them with one new lastUpdateTime, as one write of
// the service would. Nothing changes unless every id is known and every
// change succeeds.
func (t *Tenant) updateAlerts(ids []string, now time.Time, change func(*alert) error) ([]*alert, error) {
	s := &t.alerts
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := make([]int, len(ids))
	for k, id := range ids {
		i, ok := s.byID[strings.ToLower(id)]
		if !ok || !s.list[i].visible(now) {
			return nil, errAlertNotFound
		}
		idx[k] = i
	}
	out := make([]*alert, len(ids))
	for k, i := range idx {
		a := s.list[i].clone()
		if err := change(a); err != nil {
			return nil, err
		}
		out[k] = a
	}
	stamp := s.stampLocked(now)
	for k, i := range idx {
		out[k].LastUpdateTime = stamp
		s.list[i] = out[k]
	}
	return out, nil
}

// EntityKind says what kind of value AlertsMentioning looks for.
type EntityKind string

const (
	EntityFile    EntityKind = "file"    // a SHA-1 or SHA-256 in file or process evidence
	EntityIP      EntityKind = "ip"      // an IP address in evidence or the alert's network activity
	EntityDomain  EntityKind = "domain"  // a host in URL evidence or the alert's network activity
	EntityUser    EntityKind = "user"    // an account name (not a UPN): relatedUser, logged-on users, evidence
	EntityMachine EntityKind = "machine" // a device id
)

// AlertsMentioning returns the ids of the alerts the API shows now whose
// evidence or related entities mention value as kind, in arrival order.
// Matching ignores case; a domain matches URL evidence whose host is that
// domain exactly ("contoso.com" does not match "www.contoso.com").
// It is the emulator's own query behind the entity routes such as
// GET /api/files/{id}/alerts, /ips/{ip}/alerts, /domains/{d}/alerts and
// /users/{u}/alerts; handlers in this package use alertsMentioning.
func (t *Tenant) AlertsMentioning(kind EntityKind, value string) []string {
	as := t.alertsMentioning(kind, value, t.now())
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.ID
	}
	return ids
}

// alertsMentioning is AlertsMentioning for handlers: the alerts themselves,
// ready for appendAlert.
func (t *Tenant) alertsMentioning(kind EntityKind, value string, now time.Time) []*alert {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil
	}
	return t.selectAlerts(now, func(a *alert) bool { return a.mentions(kind, value) })
}

func eqFold(o opt[string], v string) bool { return o.OK && strings.EqualFold(o.V, v) }

// mentions reports whether a's evidence or related entities hold value.
func (a *alert) mentions(kind EntityKind, v string) bool {
	switch kind {
	case EntityMachine:
		return strings.EqualFold(a.MachineID, v)
	case EntityUser:
		if a.RelatedUser != nil && strings.EqualFold(a.RelatedUser.Name, v) {
			return true
		}
		if slices.ContainsFunc(a.LoggedOnUsers, func(u alertUser) bool { return strings.EqualFold(u.Name, v) }) {
			return true
		}
	case EntityIP:
		if slices.ContainsFunc(a.relatedIPs, func(ip string) bool { return strings.EqualFold(ip, v) }) {
			return true
		}
	case EntityDomain:
		if slices.ContainsFunc(a.relatedDomains, func(d string) bool { return strings.EqualFold(d, v) }) {
			return true
		}
	}
	for i := range a.Evidence {
		e := &a.Evidence[i]
		switch kind {
		case EntityFile:
			if eqFold(e.SHA1, v) || eqFold(e.SHA256, v) {
				return true
			}
		case EntityIP:
			if eqFold(e.IPAddress, v) {
				return true
			}
		case EntityDomain:
			if e.URL.OK && strings.EqualFold(urlHost(e.URL.V), v) {
				return true
			}
		case EntityUser:
			if eqFold(e.AccountName, v) {
				return true
			}
		}
	}
	return false
}

// urlHost is the host of URL evidence, which the service sends both as a
// full URL ("https://www.google.com/") and as a bare host ("www.google.com").
func urlHost(s string) string {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// alertDomains lists the distinct hosts of an alert's URL evidence and
// network activity, for GET /api/alerts/{id}/domains.
func (a *alert) alertDomains() []string {
	var out []string
	add := func(h string) {
		if h != "" && !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, h) }) {
			out = append(out, h)
		}
	}
	for _, e := range a.Evidence {
		if e.URL.OK {
			add(urlHost(e.URL.V))
		}
	}
	for _, d := range a.relatedDomains {
		add(d)
	}
	return out
}

// alertIPs lists the distinct IP addresses of an alert's evidence and
// network activity, for GET /api/alerts/{id}/ips.
func (a *alert) alertIPs() []string {
	var out []string
	add := func(ip string) {
		if ip != "" && !slices.Contains(out, ip) {
			out = append(out, ip)
		}
	}
	for _, e := range a.Evidence {
		if e.IPAddress.OK {
			add(e.IPAddress.V)
		}
	}
	for _, ip := range a.relatedIPs {
		add(ip)
	}
	return out
}

// alertFiles lists an alert's distinct file and process images that carry
// a SHA-1, for GET /api/alerts/{id}/files.
func (a *alert) alertFiles() []evidence {
	var out []evidence
	for _, e := range a.Evidence {
		if e.SHA1.OK && !slices.ContainsFunc(out, func(o evidence) bool { return strings.EqualFold(o.SHA1.V, e.SHA1.V) }) {
			out = append(out, e)
		}
	}
	return out
}

// alertRNG returns the generator for n alert additions or changes made with
// seed: the tenant's size is part of the state, so the same seed twice in a
// row still makes different alerts.
func (t *Tenant) alertRNG(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), seedMix^uint64(seedFromString(t.id))^uint64(t.AlertCount())<<20))
}

// newAlertGen returns a generator over the tenant's current machines. The
// caller holds the alert set's lock while it uses it.
func (t *Tenant) newAlertGen(rng *rand.Rand) *alertGen {
	return &alertGen{rng: rng, p: t.profile, tenantID: t.id, set: &t.alerts, machines: t.selectMachines(nil)}
}

// generateAlerts adds n alerts of the 30 days before now (Generate).
func (t *Tenant) generateAlerts(n int, seed int64, now time.Time) {
	if n <= 0 {
		return
	}
	g := t.newAlertGen(t.alertRNG(seed))
	t.alerts.mu.Lock()
	defer t.alerts.mu.Unlock()
	for _, a := range g.history(n, now) {
		t.appendAlertLocked(a)
	}
}

// loadAlerts adds alerts read from a tenant file.
func (t *Tenant) loadAlerts(raws []json.RawMessage) error {
	t.alerts.mu.Lock()
	defer t.alerts.mu.Unlock()
	t.alerts.init()
	for i, raw := range raws {
		a, err := decodeAlert(raw)
		if err != nil {
			return fmt.Errorf("alert %d: %w", i, err)
		}
		if t.alerts.has(a.ID) {
			return fmt.Errorf("alert %d: duplicate id %s", i, a.ID)
		}
		t.appendAlertLocked(a)
	}
	return nil
}

// appendAlertsFile appends ,"alerts":[…] to a tenant file when there are
// alerts, each with its evidence.
func (t *Tenant) appendAlertsFile(b []byte) []byte {
	t.alerts.mu.RLock()
	defer t.alerts.mu.RUnlock()
	if len(t.alerts.list) == 0 {
		return b
	}
	b = append(b, `,"alerts":[`...)
	for i, a := range t.alerts.list {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '\n')
		b = appendAlert(b, a, true, nil)
	}
	return append(b, "\n]"...)
}

// AlertSpec says what alerts AddAlerts makes.
type AlertSpec struct {
	Count int
	// Seed drives the generator; the same seed on the same tenant state
	// makes the same alerts.
	Seed int64
	// SharedTimestamp gives every alert one lastUpdateTime, as a burst the
	// service writes in one statement has; otherwise each gets its own.
	SharedTimestamp bool
	// CreationTime is the alerts' alertCreationTime (zero: now). An alert
	// may be created long before it is last updated.
	CreationTime time.Time
	// LastUpdateTime, when set, is the stamp the alerts carry instead of
	// now's. A stamp in the past makes them late: they show up behind a
	// client's watermark.
	LastUpdateTime time.Time
	// VisibleAfter delays the alerts' appearance in the API.
	VisibleAfter time.Duration
	// MachineID puts the alerts on this machine (default: random machines).
	MachineID string
	// UnknownMachine puts them on machines the tenant does not know.
	UnknownMachine bool
	// Severity and Category, when set, replace the generated ones as given:
	// values the service has not documented are how clients meet them.
	Severity, Category string
}

// AlertStamp names an alert and the lastUpdateTime it got.
type AlertStamp struct {
	ID             string    `json:"id"`
	LastUpdateTime time.Time `json:"lastUpdateTime"`
}

// maxAlertBatch bounds one AddAlerts or ChangeAlerts.
const maxAlertBatch = 100_000

// AddAlerts makes spec.Count new, untriaged alerts and returns their ids and
// stamps in the order they were written.
func (t *Tenant) AddAlerts(spec AlertSpec) ([]AlertStamp, error) {
	if spec.Count < 1 || spec.Count > maxAlertBatch {
		return nil, fmt.Errorf("count %d: want 1 to %d", spec.Count, maxAlertBatch)
	}
	if spec.VisibleAfter < 0 {
		return nil, errors.New("visibleAfter is negative")
	}
	now := t.now().UTC()
	var m *machine
	if spec.MachineID != "" {
		if m = t.findMachine(spec.MachineID); m == nil {
			return nil, fmt.Errorf("no machine %q", spec.MachineID)
		}
	}
	created := spec.CreationTime
	if created.IsZero() {
		created = now
	}
	g := t.newAlertGen(t.alertRNG(spec.Seed))
	s := &t.alerts
	s.mu.Lock()
	defer s.mu.Unlock()
	var shared time.Time
	out := make([]AlertStamp, 0, spec.Count)
	for range spec.Count {
		a := g.newAlert(newAlertOptions{created: created, machine: m, noMachine: spec.UnknownMachine})
		if spec.Severity != "" {
			a.Severity = spec.Severity
		}
		if spec.Category != "" {
			a.Category = spec.Category
		}
		switch {
		case !spec.LastUpdateTime.IsZero():
			a.LastUpdateTime = sqlDatetime(spec.LastUpdateTime)
		case spec.SharedTimestamp:
			if shared.IsZero() {
				shared = s.stampLocked(now)
			}
			a.LastUpdateTime = shared
		default:
			a.LastUpdateTime = s.stampLocked(now)
		}
		if a.AlertCreationTime.After(a.LastUpdateTime) {
			a.AlertCreationTime = a.LastUpdateTime
		}
		a.visibleAt = now.Add(spec.VisibleAfter)
		for s.has(a.ID) {
			a.ID = g.alertID("da", created) // the same 100 ns and the same draw: vanishingly rare
		}
		t.appendAlertLocked(a)
		out = append(out, AlertStamp{ID: a.ID, LastUpdateTime: a.LastUpdateTime})
	}
	return out, nil
}

// AlertChange says what ChangeAlerts does.
type AlertChange struct {
	// IDs are the alerts to change; empty picks Count visible alerts at
	// random.
	IDs   []string
	Count int
	Seed  int64
	// SharedTimestamp writes every change with one lastUpdateTime.
	SharedTimestamp bool
	// Fields to set; when none is given each alert gets a realistic change
	// of its own (triage, a comment, more evidence).
	Status, AssignedTo, Classification, Determination, Comment string
	// AddEvidence adds one evidence entry.
	AddEvidence bool
}

func (c AlertChange) explicit() bool {
	return c.Status != "" || c.AssignedTo != "" || c.Classification != "" || c.Determination != "" || c.Comment != "" || c.AddEvidence
}

// ChangeAlerts changes alerts as an analyst or the service would and
// returns each one's new stamp, in the order written.
func (t *Tenant) ChangeAlerts(ch AlertChange) ([]AlertStamp, error) {
	if len(ch.IDs) == 0 && (ch.Count < 1 || ch.Count > maxAlertBatch) {
		return nil, fmt.Errorf("give ids, or a count from 1 to %d", maxAlertBatch)
	}
	if ch.Status != "" && !slices.Contains(alertStatuses, ch.Status) {
		return nil, fmt.Errorf("status %q is not one of %s", ch.Status, strings.Join(alertStatuses, ", "))
	}
	now := t.now().UTC()
	g := t.newAlertGen(t.alertRNG(ch.Seed))
	ids := ch.IDs
	if len(ids) == 0 {
		vis := t.selectAlerts(now, nil)
		if len(vis) == 0 {
			return nil, errors.New("the tenant has no alerts to change")
		}
		for _, i := range g.rng.Perm(len(vis))[:min(ch.Count, len(vis))] {
			ids = append(ids, vis[i].ID)
		}
	}
	s := &t.alerts
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := make([]int, len(ids))
	for k, id := range ids {
		i, ok := s.byID[strings.ToLower(id)]
		if !ok || !s.list[i].visible(now) {
			return nil, fmt.Errorf("no alert %q", id)
		}
		idx[k] = i
	}
	var shared time.Time
	if ch.SharedTimestamp {
		shared = s.stampLocked(now)
	}
	out := make([]AlertStamp, 0, len(ids))
	for _, i := range idx {
		a := s.list[i].clone()
		if ch.explicit() {
			ch.apply(g, a, now)
		} else {
			g.change(a, now)
		}
		a.LastUpdateTime = shared
		if !ch.SharedTimestamp {
			a.LastUpdateTime = s.stampLocked(now)
		}
		s.list[i] = a
		out = append(out, AlertStamp{ID: a.ID, LastUpdateTime: a.LastUpdateTime})
	}
	return out, nil
}

func (c AlertChange) apply(g *alertGen, a *alert, now time.Time) {
	if c.Status != "" {
		setStatus(a, c.Status, now)
	}
	if c.AssignedTo != "" {
		a.AssignedTo = some(c.AssignedTo)
	}
	if c.Classification != "" {
		a.Classification = some(c.Classification)
	}
	if c.Determination != "" {
		a.Determination = some(c.Determination)
	}
	if c.Comment != "" {
		a.Comments = append(a.Comments, alertComment{Comment: c.Comment, CreatedBy: "emulator", CreatedTime: now.Truncate(100 * time.Nanosecond)})
	}
	if c.AddEvidence {
		ctx := &alertCtx{a: a, m: g.machineByID(a.MachineID), user: g.user(), at: now, first: a.FirstEventTime}
		g.addFile(ctx, g.dropper(ctx), "Detected")
	}
}

// alertStatuses are the statuses an alert can be set to.
var alertStatuses = []string{"New", "InProgress", "Resolved"}

// setStatus changes an alert's status; resolving stamps resolvedTime,
// reopening clears it.
func setStatus(a *alert, status string, now time.Time) {
	a.Status = status
	if status == "Resolved" {
		if a.ResolvedTime.IsZero() {
			a.ResolvedTime = now.Truncate(100 * time.Nanosecond)
		}
		return
	}
	a.ResolvedTime = time.Time{}
}
