package emulator

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mdebridge/mdebridge/emulator/odata"
)

// The response surface of MDE (mde-api.md §4.3–4.7, §5.2–5.5, §5.9): machine
// actions with their lifecycle, live response, investigations, custom
// indicators, and the files, IPs, domains and users the tenant's machines
// have seen. Its state lives in responseState, one per tenant.

// addResponseRoutes registers every route of the response surface.
func (s *Server) addResponseRoutes() {
	s.addActionRoutes()
	s.addIndicatorRoutes()
	s.addEntityRoutes()
	s.addInvestigationRoutes()
	s.addDownloadRoutes()
	s.addResponseControlRoutes()
}

// ActionBehaviour says how emulated machine actions run. Durations are in
// milliseconds so that the Go value and the control API's JSON read alike.
type ActionBehaviour struct {
	// PendingMs is how long an action stays Pending before the device picks
	// it up; RunMs how long it is then InProgress.
	PendingMs int64 `json:"pendingMs"`
	RunMs     int64 `json:"runMs"`
	// VisibleAfterMs is how long a new action's id answers 404 (and the
	// list leaves it out), as the live service does for a moment.
	VisibleAfterMs int64 `json:"visibleAfterMs"`
	// TimeoutMs is when an action that no device picks up ends TimeOut. An
	// action on a machine that is not Active and onboarded is never picked up.
	TimeoutMs int64 `json:"timeoutMs"`
	// FailureRate is the share of actions that end Failed; TimeoutRate the
	// share that are never picked up and end TimeOut. Drawn from a seeded
	// generator, so runs repeat.
	FailureRate float64 `json:"failureRate"`
	TimeoutRate float64 `json:"timeoutRate"`
	// Duplicates is what a request for an action type already pending on
	// the machine gets: "return-pending" (the pending action, 201) or
	// "reject" (400 ActiveRequestAlreadyExists). Microsoft documents both;
	// live response and investigation package collection always reject.
	Duplicates string `json:"duplicates"`
}

// Duplicate behaviours.
const (
	DuplicatesReturnPending = "return-pending"
	DuplicatesReject        = "reject"
)

// DefaultActionBehaviour is how actions run unless told otherwise: a device
// online picks an action up within seconds and finishes it in about twenty;
// one offline never does, and MDE times the action out after three days.
func DefaultActionBehaviour() ActionBehaviour {
	return ActionBehaviour{
		PendingMs:      5_000,
		RunMs:          15_000,
		VisibleAfterMs: 1_000,
		TimeoutMs:      int64(72 * time.Hour / time.Millisecond),
		Duplicates:     DuplicatesReturnPending,
	}
}

func (b ActionBehaviour) validate() error {
	switch {
	case b.PendingMs < 0 || b.RunMs < 0 || b.VisibleAfterMs < 0 || b.TimeoutMs < 0:
		return errors.New("action durations must not be negative")
	case b.FailureRate < 0 || b.FailureRate > 1 || b.TimeoutRate < 0 || b.TimeoutRate > 1 || b.FailureRate+b.TimeoutRate > 1:
		return errors.New("failureRate and timeoutRate are probabilities that add up to at most 1")
	case b.Duplicates != DuplicatesReturnPending && b.Duplicates != DuplicatesReject:
		return fmt.Errorf("duplicates %q: want %q or %q", b.Duplicates, DuplicatesReturnPending, DuplicatesReject)
	}
	return nil
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

// responseState is the tenant's response data. It is made on first use from
// the machines the tenant then holds (a history of actions, investigations
// and indicators, deterministic for the tenant). It has its own lock: code
// holding it may take the tenant's machine lock, never the other way round.
type responseState struct {
	once sync.Once
	mu   sync.Mutex

	rng       *mrand.Rand
	behaviour ActionBehaviour
	signKey   []byte // signs download links

	actions    []*machineAction // in creation order
	actionByID map[string]*machineAction
	byMachine  map[string][]*machineAction // lower-case machine id

	indicators      []*indicator // in id order; deleted ones are removed
	indicatorByKey  map[string]*indicator
	nextIndicatorID int64

	investigations []*investigation
	nextInvestID   int64

	library []string // live response library
	catalog *observables
}

// response returns the tenant's response state, making it on first use.
func (t *Tenant) response() *responseState {
	r := &t.resp
	r.once.Do(func() { r.init(t) })
	return r
}

func (r *responseState) init(t *Tenant) {
	seed := seedFromString(t.ID())
	r.rng = mrand.New(mrand.NewPCG(uint64(seed), seedMix^0x5e5))
	r.behaviour = DefaultActionBehaviour()
	r.signKey = make([]byte, 32)
	rand.Read(r.signKey)
	r.actionByID = map[string]*machineAction{}
	r.byMachine = map[string][]*machineAction{}
	r.indicatorByKey = map[string]*indicator{}
	r.nextIndicatorID = 1
	r.nextInvestID = 60001
	r.library = defaultLibrary()
	machines := t.selectMachines(nil)
	anchor := time.Time{}
	for _, m := range machines {
		if m.LastSeen.After(anchor) {
			anchor = m.LastSeen
		}
	}
	if anchor.IsZero() {
		anchor = time.Now().UTC()
	}
	p := t.profile
	r.catalog = newObservables(seed, p)
	hist := mrand.New(mrand.NewPCG(uint64(seed), seedMix^0xac7))
	r.generateActions(hist, machines, anchor, p)
	r.generateInvestigations(hist, machines, anchor)
	r.generateIndicators(hist, anchor, p)
}

// wireTime is a timestamp as the live service writes it (appendTime); the
// zero time is null.
type wireTime time.Time

func (t wireTime) MarshalJSON() ([]byte, error) { return appendTime(nil, time.Time(t)), nil }

// marshalWire encodes v as the service does: no HTML escaping.
func marshalWire(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("emulator: encode %T: %v", v, err)) // wire types always encode
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// entity writes one entity of set with its @odata.context first.
func (x *exchange) entity(status int, set string, v any) {
	body := marshalWire(v)
	prefix := appendString([]byte(`{"@odata.context":`), x.baseURL()+"/api/$metadata#"+set)
	if len(body) > 2 {
		prefix = append(prefix, ',')
	}
	x.odata(status, append(prefix, body[1:]...))
}

// collection is an OData entity set served with $filter, $orderby, $top,
// $skip and $count, paged as the machine list is: with $top at most $top
// items and no nextLink, without it pages of maxTop chained by nextLink.
type collection[T any] struct {
	set    string // e.g. "MachineActions", for @odata.context
	schema *odata.Schema[T]
	maxTop int
	wire   func(T) any
}

func (c collection[T]) serve(x *exchange, items []T) {
	q, err := odata.ParseQuery(x.r.URL.RawQuery, odata.QueryLimits{
		MaxTop:  c.maxTop,
		Options: []string{"$filter", "$top", "$skip", "$orderby", "$count"},
	})
	if err != nil {
		x.odataError(err)
		return
	}
	if q.Filter != nil {
		keep, err := c.schema.Compile(q.Filter)
		if err != nil {
			x.odataError(err)
			return
		}
		kept := items[:0:0]
		for _, it := range items {
			if keep(it) {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	if q.OrderBy != nil {
		sorter, err := c.schema.Sorter(q.OrderBy)
		if err != nil {
			x.odataError(err)
			return
		}
		sorter(items)
	}
	total := len(items)
	page := items[min(q.Skip, total):]
	next := -1
	if q.HasTop {
		page = page[:min(q.Top, len(page))]
	} else if len(page) > c.maxTop {
		page = page[:c.maxTop]
		next = q.Skip + c.maxTop
	}
	b := []byte(`{"@odata.context":`)
	b = appendString(b, x.baseURL()+"/api/$metadata#"+c.set)
	if q.Count {
		b = append(b, `,"@odata.count":`...)
		b = strconv.AppendInt(b, int64(total), 10)
	}
	b = append(b, `,"value":[`...)
	for i, it := range page {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, marshalWire(c.wire(it))...)
	}
	b = append(b, ']')
	if next >= 0 {
		b = append(b, `,"@odata.nextLink":`...)
		b = appendString(b, x.baseURL()+x.r.URL.EscapedPath()+"?"+withSkip(x.r.URL.RawQuery, next))
	}
	b = append(b, '}')
	x.odata(http.StatusOK, b)
}

// valueCollection answers a plain collection (no query options).
func (x *exchange) valueCollection(set string, items []any) {
	b := []byte(`{"@odata.context":`)
	b = appendString(b, x.baseURL()+"/api/$metadata#"+set)
	b = append(b, `,"value":[`...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, marshalWire(it)...)
	}
	b = append(b, "]}"...)
	x.odata(http.StatusOK, b)
}

// hasRole reports whether the caller's token holds any of roles.
func (x *exchange) hasRole(roles ...string) bool {
	if x.token == nil {
		return false
	}
	for _, have := range x.token.Roles {
		for _, r := range roles {
			if have == r {
				return true
			}
		}
	}
	return false
}

// forbidden answers 403 with the live message naming the roles needed.
func (x *exchange) forbidden(roles []string) {
	x.s.log.Info("emulator: 403, missing application permission", "route", x.route.key, "need", roles)
	x.mdeError(http.StatusForbidden, "Forbidden", fmt.Sprintf(
		"The application does not have any of the required application permissions (%s) to access the resource.",
		strings.Join(roles, ", ")))
}

// requestor is how the service records who asked: the calling app's id.
func (x *exchange) requestor() string {
	if x.token == nil {
		return ""
	}
	return x.token.AppID
}

// isHex reports whether s is n hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
