package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mdebridge/mdebridge/emulator/kql"
	"github.com/mdebridge/mdebridge/ratelimit"
)

// Advanced hunting (mde-api.md §5.6): POST /api/advancedqueries/run and its
// Microsoft 365 Defender twin POST /api/advancedhunting/run, which also
// answers Stats. Queries run over the tables of the server's catalog with
// the service's limits: 45 calls a minute and 1,500 an hour, 10 minutes of
// running time an hour and 3 hours a day per tenant, 100,000 rows, a
// 124 MB result, 200 seconds a query.

const (
	maxQueryTime      = 200 * time.Second
	defaultMaxResult  = 124 << 20
	defaultCPUPerHour = 10 * time.Minute
	defaultCPUPerDay  = 3 * time.Hour
)

// The live service's words.
const (
	msgRecognitionError = "A recognition error occurred.. Fix syntax errors in your query."
	msgResultSize       = "Query execution has exceeded the allowed result size. Optimize your query by limiting the number of results and try again."
	msgLimits           = "Query execution has exceeded the allowed limits. The query execution was preempted. This could possibly be due to high CPU and/or memory resource consumption. Optimize your query by following best practices and try again."
	msgTimeout          = "Query exceeded the timeout period."
)

var huntingLimit = limitSpec{windows: []ratelimit.Window{perMinute(45), perHour(1500)}, code: "429"}

// hunting is the server's advanced hunting state.
type hunting struct {
	catalog *kql.Catalog
	gen     *huntGen

	mu         sync.Mutex
	maxRows    int
	maxResult  int
	cpuPerHour time.Duration
	cpuPerDay  time.Duration
	used       []cpuUse // running time charged in the last day, oldest first
	queries    int
}

type cpuUse struct {
	at time.Time
	d  time.Duration
}

// huntingState returns the server's hunting state, made on first use so
// that tables may be added before or after the routes.
func (s *Server) huntingState() *hunting {
	if s.hunting == nil {
		s.hunting = &hunting{catalog: kql.NewCatalog(), gen: newHuntGen(s.tenant), maxRows: kql.DefaultMaxRows,
			maxResult: defaultMaxResult, cpuPerHour: defaultCPUPerHour, cpuPerDay: defaultCPUPerDay}
	}
	return s.hunting
}

func (s *Server) addHuntingRoutes() {
	t, g := s.tenant, s.huntingState().gen
	s.addHuntingTable(newDeviceTable(t, g, "DeviceInfo", deviceInfoColumns, deviceInfoRows))
	s.addHuntingTable(newDeviceTable(t, g, "DeviceLogonEvents", deviceLogonEventsColumns, deviceLogonRows))
	s.addHuntingTable(newDeviceTable(t, g, "DeviceProcessEvents", deviceProcessEventsColumns, processRows))
	s.addHuntingTable(newDeviceTable(t, g, "DeviceNetworkEvents", deviceNetworkEventsColumns, networkRows))
	s.addHuntingTable(newDeviceTable(t, g, "DeviceFileEvents", deviceFileEventsColumns, fileRows))
	s.addHuntingTable(newDeviceTable(t, g, "DeviceRegistryEvents", deviceRegistryEventsColumns, registryRows))
	s.addHuntingTable(newDeviceTable(t, g, "DeviceEvents", deviceEventsColumns, deviceEventRows))

	s.routes.add(&route{method: "POST", template: "/api/advancedqueries/run", surface: surfaceMDE,
		roles: []string{"AdvancedQuery.Read.All"}, limit: huntingLimit, handle: func(x *exchange) { s.runHuntingQuery(x, false) }})
	// The live twin belongs to another resource application (Microsoft
	// Threat Protection, permission AdvancedHunting.Read.All); the emulator
	// serves both APIs from one resource, so MDE's permission also does.
	s.routes.add(&route{method: "POST", template: "/api/advancedhunting/run", surface: surfaceMDE,
		roles: []string{"AdvancedHunting.Read.All", "AdvancedQuery.Read.All"}, limit: huntingLimit, handle: func(x *exchange) { s.runHuntingQuery(x, true) }})

	control := func(method, template string, h func(*exchange)) {
		s.routes.add(&route{method: method, template: template, surface: surfaceControl, handle: h})
	}
	control("GET", "/_emulator/hunting", func(x *exchange) { x.json(http.StatusOK, s.HuntingSettings()) })
	control("PUT", "/_emulator/hunting", s.controlSetHunting)
	control("POST", "/_emulator/hunting/cpu", s.controlSpendCPU)
	control("DELETE", "/_emulator/hunting/cpu", func(x *exchange) { s.ResetHuntingCPU(); x.empty(http.StatusNoContent) })
}

// addHuntingTable makes a table queryable by advanced hunting. Adding a
// table is this one call, from an area's add…Routes; a second table of the
// same name is a bug.
func (s *Server) addHuntingTable(t kql.Table) {
	if err := s.huntingState().catalog.Register(t); err != nil {
		panic("emulator: " + err.Error())
	}
}

// cpuWindows are the running-time quotas, scaled like every rate window.
func (h *hunting) cpuWindows(r RateLimits) (hour, dayLen time.Duration) {
	hour, dayLen = time.Hour, 24*time.Hour
	if r.Divisor > 1 {
		hour, dayLen = hour/time.Duration(r.Divisor), dayLen/time.Duration(r.Divisor)
	}
	return hour, dayLen
}

// usedSince sums the running time charged after t.
func (h *hunting) usedSince(t time.Time) time.Duration {
	var sum time.Duration
	for _, u := range h.used {
		if u.at.After(t) {
			sum += u.d
		}
	}
	return sum
}

// cpuExhausted says whether a quota is spent, which, and when enough of it
// frees up.
func (h *hunting) cpuExhausted(now time.Time, r RateLimits) (budget, window, wait time.Duration, spent bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hour, dayLen := h.cpuWindows(r)
	// Forget what left the longer window.
	i := 0
	for i < len(h.used) && !h.used[i].at.After(now.Add(-dayLen)) {
		i++
	}
	h.used = h.used[i:]
	for _, q := range []struct{ budget, window time.Duration }{{h.cpuPerDay, dayLen}, {h.cpuPerHour, hour}} {
		used := h.usedSince(now.Add(-q.window))
		if used < q.budget {
			continue
		}
		// Wait until what ages out of the window brings it under budget.
		for _, u := range h.used {
			if !u.at.After(now.Add(-q.window)) {
				continue
			}
			used -= u.d
			if used < q.budget {
				return q.budget, q.window, u.at.Add(q.window).Sub(now), true
			}
		}
		return q.budget, q.window, q.window, true
	}
	return 0, 0, 0, false
}

func (h *hunting) charge(now time.Time, d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	// Nothing older than a day counts (a scaled day is shorter).
	i := 0
	for i < len(h.used) && h.used[i].at.Before(now.Add(-24*time.Hour)) {
		i++
	}
	h.used = append(h.used[i:], cpuUse{at: now, d: d})
	h.queries++
}

func (h *hunting) limits() (rows, bytes int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.maxRows, h.maxResult
}

func (s *Server) runHuntingQuery(x *exchange, withStats bool) {
	body, ok := x.readBody("Query")
	if !ok {
		return
	}
	query, ok := x.bodyString(body, "Query")
	if !ok {
		return
	}
	if strings.TrimSpace(query) == "" {
		x.mdeError(http.StatusBadRequest, "BadRequest", msgRecognitionError)
		return
	}
	h := s.hunting
	if limits := s.RateLimits(); !limits.Off {
		if budget, window, wait, spent := h.cpuExhausted(s.now(), limits); spent {
			secs := max(1, int(math.Ceil(wait.Seconds())))
			s.countThrottled()
			s.log.Info("emulator: 429, hunting CPU quota spent", "route", x.route.key, "budget", budget, "window", window, "retryAfter", secs)
			x.w.Header().Set("Retry-After", strconv.Itoa(secs))
			x.mdeError(http.StatusTooManyRequests, "429", fmt.Sprintf(
				"Query CPU quota exceeded! maximum allowed %s of running time per %s", timeSpan(budget), timeSpan(window)))
			return
		}
	}
	maxRows, maxBytes := h.limits()
	ctx, cancel := context.WithTimeout(x.r.Context(), maxQueryTime)
	defer cancel()
	start := time.Now()
	res, err := kql.Run(ctx, h.catalog, query, kql.Options{Now: s.now(), MaxRows: maxRows})
	took := time.Since(start)
	h.charge(s.now(), took)
	if err != nil {
		s.huntingError(x, query, err)
		return
	}
	b, ok := encodeHuntingResult(res, maxBytes, withStats, took)
	if !ok {
		x.mdeError(http.StatusBadRequest, "BadRequest", msgResultSize)
		return
	}
	s.log.Info("emulator: hunting query", "rows", len(res.Rows), "truncated", res.Truncated, "scanned", res.Scanned,
		"bytes", len(b), "took", took)
	x.send(http.StatusOK, contentTypeJSON, b)
}

func (s *Server) huntingError(x *exchange, query string, err error) {
	var se *kql.SyntaxError
	var me *kql.SemanticError
	var le *kql.LimitError
	switch {
	case errors.As(err, &se):
		// The service says no more than this; the emulator's log says where.
		s.log.Info("emulator: hunting query does not parse", "err", se, "query", query)
		x.mdeError(http.StatusBadRequest, "BadRequest", msgRecognitionError)
	case errors.As(err, &me):
		x.mdeError(http.StatusBadRequest, "BadRequest", me.Error())
	case errors.As(err, &le):
		x.mdeError(http.StatusBadRequest, "BadRequest", msgLimits)
	case errors.Is(err, context.DeadlineExceeded):
		x.mdeError(http.StatusBadRequest, "BadRequest", msgTimeout)
	case x.r.Context().Err() != nil:
		x.status = 499 // the client left; nothing to answer
	default:
		s.log.Error("emulator: hunting query failed", "err", err)
		x.mdeError(http.StatusInternalServerError, "InternalServerError", "")
	}
}

// encodeHuntingResult writes {"Schema":[...],"Results":[...]} (with Stats
// first for the Microsoft 365 Defender API); ok is false past maxBytes.
func encodeHuntingResult(res *kql.Result, maxBytes int, withStats bool, took time.Duration) ([]byte, bool) {
	b := make([]byte, 0, 256+len(res.Rows)*64*len(res.Columns))
	b = append(b, '{')
	if withStats {
		cpu := timeSpan(took)
		b = append(b, `"Stats":{"ExecutionTime":`...)
		b = strconv.AppendFloat(b, took.Seconds(), 'f', 6, 64)
		b = append(b, `,"resource_usage":{"cache":{"memory":null,"disk":null},"cpu":{"user":`...)
		b = appendString(b, cpu)
		b = append(b, `,"kernel":"00:00:00","total cpu":`...)
		b = appendString(b, cpu)
		b = append(b, `},"memory":{"peak_per_node":`...)
		b = strconv.AppendInt(b, 1<<20+int64(len(res.Rows))*512, 10)
		b = append(b, `}},"dataset_statistics":[{"table_row_count":`...)
		b = strconv.AppendInt(b, int64(len(res.Rows)), 10)
		b = append(b, `,"table_size":`...)
		b = strconv.AppendInt(b, int64(len(res.Rows)*len(res.Columns)*16), 10)
		b = append(b, `}]},`...)
	}
	b = append(b, `"Schema":[`...)
	for i, c := range res.Columns {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"Name":`...)
		b = appendString(b, c.Name)
		b = append(b, `,"Type":`...)
		b = appendString(b, c.Type.APIName())
		b = append(b, '}')
	}
	b = append(b, `],"Results":[`...)
	keys := make([][]byte, len(res.Columns))
	for i, c := range res.Columns {
		keys[i] = append(appendString(nil, c.Name), ':')
	}
	for i, row := range res.Rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		for j, v := range row {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, keys[j]...)
			b = appendKQLValue(b, v, res.Columns[j].Type)
		}
		b = append(b, '}')
		if len(b) > maxBytes {
			return nil, false
		}
	}
	b = append(b, "]}"...)
	return b, len(b) <= maxBytes
}

// appendKQLValue writes a result cell as advanced hunting's Results do:
// strings and datetimes (UTC, seven fractional digits) as JSON strings,
// numbers and booleans bare, timespans as "[d.]hh:mm:ss[.fffffff]",
// dynamic values as JSON, null as null (a string column's as "").
func appendKQLValue(b []byte, v kql.Value, column kql.Type) []byte {
	switch v.Kind {
	case kql.Null:
		if column == kql.String {
			return append(b, `""`...)
		}
	case kql.Bool:
		return strconv.AppendBool(b, v.I != 0)
	case kql.Int, kql.Long:
		return strconv.AppendInt(b, v.I, 10)
	case kql.Real:
		if math.IsNaN(v.F) || math.IsInf(v.F, 0) {
			return appendString(b, v.Text())
		}
		return strconv.AppendFloat(b, v.F, 'g', -1, 64)
	case kql.String, kql.DateTime, kql.TimeSpan:
		return appendString(b, v.Text())
	case kql.Dynamic:
		if data, err := json.Marshal(v.D); err == nil {
			return append(b, data...)
		}
	}
	return append(b, "null"...)
}

// HuntingSettings is the advanced hunting state the control API shows.
type HuntingSettings struct {
	Tables          []string `json:"tables"`
	MaxRows         int      `json:"maxRows"`
	MaxResultBytes  int      `json:"maxResultBytes"`
	CPUPerHour      string   `json:"cpuPerHour"`
	CPUPerDay       string   `json:"cpuPerDay"`
	CPUUsedLastHour string   `json:"cpuUsedLastHour"`
	CPUUsedLastDay  string   `json:"cpuUsedLastDay"`
	Queries         int      `json:"queries"`
}

// HuntingSettings returns the hunting limits and the running time used.
func (s *Server) HuntingSettings() HuntingSettings {
	h := s.hunting
	hour, dayLen := h.cpuWindows(s.RateLimits())
	now := s.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	return HuntingSettings{Tables: h.catalog.Names(), MaxRows: h.maxRows, MaxResultBytes: h.maxResult,
		CPUPerHour: h.cpuPerHour.String(), CPUPerDay: h.cpuPerDay.String(),
		CPUUsedLastHour: h.usedSince(now.Add(-hour)).String(), CPUUsedLastDay: h.usedSince(now.Add(-dayLen)).String(),
		Queries: h.queries}
}

// HuntingLimits change the hunting limits; nil fields stay as they are.
type HuntingLimits struct {
	MaxRows        *int    `json:"maxRows"`
	MaxResultBytes *int    `json:"maxResultBytes"`
	CPUPerHour     *string `json:"cpuPerHour"`
	CPUPerDay      *string `json:"cpuPerDay"`
}

// SetHuntingLimits changes the row cap, the result size limit or the CPU
// quotas (Go durations, e.g. "10m"), as PUT /_emulator/hunting does.
func (s *Server) SetHuntingLimits(l HuntingLimits) error {
	h := s.hunting
	parse := func(name string, v *string) (time.Duration, error) {
		d, err := time.ParseDuration(*v)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("%s %q is not a duration such as 10m", name, *v)
		}
		return d, nil
	}
	var perHour, perDay time.Duration
	var err error
	if l.CPUPerHour != nil {
		if perHour, err = parse("cpuPerHour", l.CPUPerHour); err != nil {
			return err
		}
	}
	if l.CPUPerDay != nil {
		if perDay, err = parse("cpuPerDay", l.CPUPerDay); err != nil {
			return err
		}
	}
	if l.MaxRows != nil && *l.MaxRows < 1 {
		return errors.New("maxRows must be at least 1")
	}
	if l.MaxResultBytes != nil && *l.MaxResultBytes < 1 {
		return errors.New("maxResultBytes must be at least 1")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if l.MaxRows != nil {
		h.maxRows = *l.MaxRows
	}
	if l.MaxResultBytes != nil {
		h.maxResult = *l.MaxResultBytes
	}
	if l.CPUPerHour != nil {
		h.cpuPerHour = perHour
	}
	if l.CPUPerDay != nil {
		h.cpuPerDay = perDay
	}
	return nil
}

// SpendHuntingCPU charges running time as if queries had used it, to bring
// the tenant to its CPU quota.
func (s *Server) SpendHuntingCPU(d time.Duration) {
	h := s.hunting
	h.mu.Lock()
	defer h.mu.Unlock()
	h.used = append(h.used, cpuUse{at: s.now(), d: d})
}

// ResetHuntingCPU forgets the running time used.
func (s *Server) ResetHuntingCPU() {
	h := s.hunting
	h.mu.Lock()
	defer h.mu.Unlock()
	h.used = nil
}

func (s *Server) controlSetHunting(x *exchange) {
	var l HuntingLimits
	if !x.decodeControl(&l) {
		return
	}
	if err := s.SetHuntingLimits(l); err != nil {
		x.controlError(http.StatusBadRequest, err.Error())
		return
	}
	x.json(http.StatusOK, s.HuntingSettings())
}

func (s *Server) controlSpendCPU(x *exchange) {
	var req struct {
		Spend string `json:"spend"`
	}
	if !x.decodeControl(&req) {
		return
	}
	d, err := time.ParseDuration(req.Spend)
	if err != nil || d <= 0 {
		x.controlError(http.StatusBadRequest, fmt.Sprintf("spend %q is not a positive duration such as 10m", req.Spend))
		return
	}
	s.SpendHuntingCPU(d)
	x.json(http.StatusOK, s.HuntingSettings())
}
