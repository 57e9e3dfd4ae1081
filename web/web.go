// Package web serves mdebridge's REST API (JSON, described by an OpenAPI
// document at /api/v1/openapi.json), /healthz and /metrics. It reads through
// the domain interfaces only and never talks to Microsoft directly: a sync is
// requested through the function it is given.
package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mdebridge/mdebridge"
)

// The OpenAPI document is kept in one fragment per area (openapi/*.json),
// merged in name order: the first fragment gives the header, every fragment
// adds its paths and component schemas.
//
//go:embed openapi/*.json
var openAPIFragments embed.FS

// OpenAPI returns the merged OpenAPI document.
func OpenAPI() ([]byte, error) {
	names, err := fs.Glob(openAPIFragments, "openapi/*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	doc := map[string]any{}
	paths := map[string]any{}
	schemas := map[string]any{}
	security := map[string]any{}
	for _, n := range names {
		data, err := openAPIFragments.ReadFile(n)
		if err != nil {
			return nil, err
		}
		var frag struct {
			OpenAPI    string                     `json:"openapi"`
			Info       json.RawMessage            `json:"info"`
			Paths      map[string]json.RawMessage `json:"paths"`
			Components struct {
				Schemas         map[string]json.RawMessage `json:"schemas"`
				SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
			} `json:"components"`
		}
		if err := json.Unmarshal(data, &frag); err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		if frag.OpenAPI != "" {
			doc["openapi"], doc["info"] = frag.OpenAPI, frag.Info
		}
		for k, v := range frag.Paths {
			if _, dup := paths[k]; dup {
				return nil, fmt.Errorf("%s: path %s is described twice", n, k)
			}
			paths[k] = v
		}
		for k, v := range frag.Components.Schemas {
			if _, dup := schemas[k]; dup {
				return nil, fmt.Errorf("%s: schema %s is described twice", n, k)
			}
			schemas[k] = v
		}
		for k, v := range frag.Components.SecuritySchemes {
			security[k] = v
		}
	}
	doc["paths"] = paths
	components := map[string]any{"schemas": schemas}
	if len(security) > 0 {
		components["securitySchemes"] = security
	}
	doc["components"] = components
	return json.MarshalIndent(doc, "", "  ")
}

// Options configure a Server.
type Options struct {
	Machines mdebridge.MachineStore // required
	Runs     mdebridge.SyncStore    // required
	Status   mdebridge.StatusStore  // required
	// Exposure serves vulnerabilities and software; nil leaves them out.
	Exposure mdebridge.ExposureStore
	// Alerts and Incidents serve the incident routes (incidents.go); nil
	// answers them 501. IncidentService changes incidents; nil makes the
	// changing routes answer 501.
	Alerts          mdebridge.AlertStore
	Incidents       mdebridge.IncidentStore
	IncidentService mdebridge.IncidentService
	// Sync runs one sync; nil makes POST /api/v1/sync answer 501.
	Sync func(ctx context.Context) (*mdebridge.SyncRun, error)
	// Hunting runs advanced hunting queries; nil makes POST /api/v1/hunt answer 501.
	Hunting mdebridge.HuntingQuerier
	// LogonUsers serves GET /api/v1/machines/{key}/logonusers; nil answers 501.
	LogonUsers mdebridge.LogonUserStore
	// Gatherer serves /metrics; nil serves an empty registry.
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
	Version  string
	// BaseContext bounds background work such as a requested sync.
	BaseContext context.Context
	// Response wires the response routes (response.go); zero leaves them out.
	Response ResponseOptions
}

// Server is the HTTP handler.
type Server struct {
	opts Options
	mux  *http.ServeMux
	log  *slog.Logger

	mu      sync.Mutex
	syncing bool
	wg      sync.WaitGroup
}

// New returns the handler.
func New(opts Options) (*Server, error) {
	if opts.Machines == nil || opts.Runs == nil || opts.Status == nil {
		return nil, errors.New("web: Machines, Runs and Status are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Gatherer == nil {
		opts.Gatherer = prometheus.NewRegistry()
	}
	if opts.BaseContext == nil {
		opts.BaseContext = context.Background()
	}
	spec, err := OpenAPI()
	if err != nil {
		return nil, fmt.Errorf("web: openapi: %w", err)
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), log: opts.Logger}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(spec)
	})
	s.mux.HandleFunc("GET /api/v1/machines", s.listMachines)
	s.mux.HandleFunc("GET /api/v1/machines/{key}", s.getMachine)
	s.mux.HandleFunc("GET /api/v1/sync", s.listRuns)
	s.mux.HandleFunc("POST /api/v1/sync", s.startSync)
	s.mux.HandleFunc("GET /api/v1/status", s.status)
	s.addResponseRoutes()
	s.addHuntingRoutes()
	s.addExposureRoutes()
	s.addIncidentRoutes()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no route "+r.Method+" "+r.URL.Path+"; see /api/v1/openapi.json")
	})
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: 200}
	s.mux.ServeHTTP(sw, r)
	s.log.Debug("http", "method", r.Method, "path", r.URL.Path, "status", sw.status, "took", time.Since(start))
}

// Wait blocks until background work (a requested sync) has ended.
func (s *Server) Wait() { s.wg.Wait() }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

type apiError struct {
	Code       string   `json:"code"`
	Message    string   `json:"message"`
	Candidates []string `json:"candidates,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]apiError{"error": {Code: code, Message: msg}})
}

func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal", "the request failed; see the server log")
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if _, err := s.opts.Status.Counts(r.Context()); err != nil {
		s.log.Error("health check", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "store unreadable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.opts.Version})
}

// page is a list response.
type page struct {
	Items  []json.RawMessage `json:"items"`
	Total  int               `json:"total"`
	Offset int               `json:"offset"`
	Limit  int               `json:"limit"`
	Next   *string           `json:"next"`
}

// rawPage writes a page of MDE objects with the total and a next link.
func rawPage(w http.ResponseWriter, r *http.Request, raws []json.RawMessage, total, offset, limit int) {
	p := page{Items: raws, Total: total, Offset: offset, Limit: limit,
		Next: nextLink(r.URL.Path, r.URL.Query(), offset, len(raws), limit, total)}
	if p.Items == nil {
		p.Items = []json.RawMessage{}
	}
	writeJSON(w, http.StatusOK, p)
}

// rawsOf is the raw JSON of each item, for a page of MDE's own objects.
func rawsOf[T any](items []T, raw func(T) json.RawMessage) []json.RawMessage {
	out := make([]json.RawMessage, len(items))
	for i, it := range items {
		out[i] = raw(it)
	}
	return out
}

// nextLink is the URL of the page after offset+n of total, or nil.
func nextLink(path string, q url.Values, offset, n, limit, total int) *string {
	if offset+n >= total {
		return nil
	}
	nq := url.Values{}
	for k, v := range q {
		nq[k] = v
	}
	nq.Set("offset", strconv.Itoa(offset+n))
	nq.Set("limit", strconv.Itoa(limit))
	next := path + "?" + nq.Encode()
	return &next
}

const maxLimit = 10000

func (s *Server) listMachines(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, offset, err := paging(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	retired, _ := strconv.ParseBool(q.Get("include_retired"))
	f := mdebridge.MachineFilter{
		OSPlatform: q.Get("os"), HealthStatus: q.Get("health"), RiskScore: q.Get("risk"), ExposureLevel: q.Get("exposure"),
		Tag: q.Get("tag"), RBACGroup: q.Get("group"), NamePrefix: q.Get("name"), IncludeRetired: retired,
		Offset: offset, Limit: limit,
	}
	ms, total, err := s.opts.Machines.FindMachines(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	p := page{Items: rawsOf(ms, func(m mdebridge.Machine) json.RawMessage { return m.Raw }), Total: total, Offset: offset, Limit: limit,
		Next: nextLink("/api/v1/machines", q, offset, len(ms), limit, total)}
	writeJSON(w, http.StatusOK, p)
}

func paging(q url.Values) (limit, offset int, err error) {
	limit = 100
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxLimit {
			return 0, 0, errors.New("limit must be a whole number from 1 to 10000")
		}
	}
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, errors.New("offset must be a whole number, 0 or more")
		}
	}
	return limit, offset, nil
}

func (s *Server) getMachine(w http.ResponseWriter, r *http.Request) {
	m, err := s.opts.Machines.FindMachine(r.Context(), r.PathValue("key"))
	if err != nil {
		s.lookupError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(m.Raw)
}

// lookupError answers a lookup or change that failed: 409 with the
// candidates of an ambiguous key, 404 with near matches of an unknown one,
// 400 for a change that cannot be made.
func (s *Server) lookupError(w http.ResponseWriter, r *http.Request, err error) {
	var amb *mdebridge.AmbiguousError
	var nf *mdebridge.NotFoundError
	switch {
	case errors.As(err, &amb):
		writeJSON(w, http.StatusConflict, map[string]apiError{"error": {Code: "ambiguous", Message: err.Error(), Candidates: amb.Candidates}})
	case errors.As(err, &nf):
		writeJSON(w, http.StatusNotFound, map[string]apiError{"error": {Code: "not_found", Message: err.Error(), Candidates: nf.Near}})
	case errors.Is(err, mdebridge.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, mdebridge.ErrInvalidUpdate):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	default:
		s.internal(w, r, err)
	}
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	n := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "bad_request", "limit must be a whole number from 1 to 1000")
			return
		}
	}
	runs, err := s.opts.Runs.LastRuns(r.Context(), n)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if runs == nil {
		runs = []mdebridge.SyncRun{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": runs})
}

func (s *Server) startSync(w http.ResponseWriter, r *http.Request) {
	if s.opts.Sync == nil {
		writeError(w, http.StatusNotImplemented, "not_implemented", "this server cannot run syncs")
		return
	}
	s.mu.Lock()
	if s.syncing {
		s.mu.Unlock()
		writeError(w, http.StatusConflict, "busy", "a sync is already running; see GET /api/v1/sync")
		return
	}
	s.syncing = true
	s.mu.Unlock()
	s.wg.Go(func() {
		defer func() {
			s.mu.Lock()
			s.syncing = false
			s.mu.Unlock()
		}()
		if _, err := s.opts.Sync(s.opts.BaseContext); err != nil {
			s.log.Error("requested sync", "err", err)
		}
	})
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "started", "runs": "/api/v1/sync"})
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	counts, err := s.opts.Status.Counts(r.Context())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	steps, err := s.opts.Runs.LastStepResults(r.Context())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"counts": counts, "steps": steps, "version": s.opts.Version})
}
