package web

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
)

// ResponseOptions wire the response routes: machine actions, bulk jobs,
// the audit log, indicators and enrichment. Reads need no token; writes
// (anything that asks MDE to act or changes indicators) need the responder
// bearer token.
type ResponseOptions struct {
	Responder  mdebridge.Responder // nil: write and enrich endpoints answer 501
	Actions    mdebridge.ActionStore
	Jobs       mdebridge.BulkStore
	Audit      mdebridge.AuditStore
	Indicators mdebridge.IndicatorStore
	// Token is the bearer token of the responder role; "" disables writes.
	Token string
}

func (s *Server) addResponseRoutes() {
	o := s.opts.Response
	if o.Actions == nil || o.Jobs == nil || o.Audit == nil || o.Indicators == nil {
		return
	}
	s.mux.HandleFunc("GET /api/v1/actions", s.listActions)
	s.mux.HandleFunc("GET /api/v1/actions/{id}", s.getAction)
	s.mux.HandleFunc("POST /api/v1/actions", s.responder(s.postAction))
	s.mux.HandleFunc("POST /api/v1/actions/{id}/cancel", s.responder(s.cancelAction))
	s.mux.HandleFunc("GET /api/v1/jobs", s.listJobs)
	s.mux.HandleFunc("GET /api/v1/jobs/{id}", s.getJob)
	s.mux.HandleFunc("POST /api/v1/jobs/{id}/resume", s.responder(s.resumeJob))
	s.mux.HandleFunc("GET /api/v1/audit", s.listAudit)
	s.mux.HandleFunc("GET /api/v1/indicators", s.listIndicators)
	s.mux.HandleFunc("GET /api/v1/indicators/{key}", s.getIndicator)
	s.mux.HandleFunc("POST /api/v1/indicators", s.responder(s.postIndicators))
	s.mux.HandleFunc("POST /api/v1/indicators/import", s.responder(s.importIndicators))
	s.mux.HandleFunc("DELETE /api/v1/indicators/{key}", s.responder(s.deleteIndicator))
	s.mux.HandleFunc("GET /api/v1/enrich/{value}", s.enrich)
}

// writer is a write handler, given who acts.
type writer func(w http.ResponseWriter, r *http.Request, actor string)

// responder guards a write endpoint: it needs the responder bearer token,
// compared in constant time; without a configured token writes are off.
func (s *Server) responder(h writer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o := s.opts.Response
		if o.Responder == nil {
			writeError(w, http.StatusNotImplemented, "not_implemented", "this server cannot act on MDE")
			return
		}
		if o.Token == "" {
			writeError(w, http.StatusForbidden, "writes_disabled", "write endpoints are off: set response.responder_token in the configuration")
			return
		}
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(o.Token)) != 1 {
			s.log.Warn("write refused: no valid responder token", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="mdebridge responder"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "this endpoint needs the responder bearer token (Authorization: Bearer …)")
			return
		}
		h(w, r, "rest api ("+r.RemoteAddr+")")
	}
}

// respondError maps an error of the response service to a status.
func (s *Server) respondError(w http.ResponseWriter, r *http.Request, err error) {
	var in *mdebridge.InputError
	var pe *mdebridge.PermissionError
	switch {
	case errors.As(err, &in):
		writeError(w, http.StatusBadRequest, "bad_request", in.Msg)
	case errors.As(err, new(*mdebridge.AmbiguousError)), errors.As(err, new(*mdebridge.NotFoundError)):
		s.lookupError(w, r, err)
	case errors.Is(err, mdebridge.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.As(err, &pe):
		// MDE refused mdebridge's credentials: a dependency failed, not the caller.
		writeError(w, http.StatusFailedDependency, "mde_permission", pe.Error())
	default:
		s.log.Error("response request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusBadGateway, "upstream", err.Error())
	}
}

// decodeBody reads a JSON body strictly (unknown fields are errors).
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "bad request body: "+err.Error())
		return false
	}
	return true
}

// actionRequest is the body of POST /api/v1/actions: an ActionRequest with
// the timeout in seconds.
type actionRequest struct {
	mdebridge.ActionRequest
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
}

func (s *Server) postAction(w http.ResponseWriter, r *http.Request, actor string) {
	var body actionRequest
	if !decodeBody(w, r, &body) {
		return
	}
	req := body.ActionRequest
	req.Actor, req.Timeout = actor, time.Duration(body.TimeoutSeconds)*time.Second
	if req.DownloadDir != "" {
		writeError(w, http.StatusBadRequest, "bad_request", "downloads are a CLI feature (collect --download, live-response --download)")
		return
	}
	rep, err := s.opts.Response.Responder.Respond(r.Context(), req, nil)
	if err != nil && rep == nil {
		s.respondError(w, r, err)
		return
	}
	status := http.StatusOK
	body2 := map[string]any{"report": rep}
	if err != nil {
		status = http.StatusMultiStatus
		body2["error"] = err.Error()
	}
	writeJSON(w, status, body2)
}

func (s *Server) cancelAction(w http.ResponseWriter, r *http.Request, actor string) {
	var body struct {
		Comment string `json:"comment"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	a, err := s.opts.Response.Responder.CancelAction(r.Context(), r.PathValue("id"), body.Comment, actor)
	if err != nil {
		s.respondError(w, r, err)
		return
	}
	writeRaw(w, a.Raw)
}

func writeRaw(w http.ResponseWriter, raw json.RawMessage) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(raw)
}

func sinceParam(q url.Values) (time.Time, error) {
	v := q.Get("since")
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return t, errors.New("since must be a duration (24h) or an RFC 3339 time")
	}
	return t, nil
}

func (s *Server) listActions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, offset, err := paging(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	f := mdebridge.ActionFilter{Type: q.Get("type"), Status: q.Get("status"), Limit: limit, Offset: offset}
	if f.Since, err = sinceParam(q); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if key := q.Get("machine"); key != "" {
		m, err := s.opts.Machines.FindMachine(r.Context(), key)
		if err != nil {
			s.respondError(w, r, err)
			return
		}
		f.MachineID = m.ID
	}
	as, total, err := s.opts.Response.Actions.FindMachineActions(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	raws := rawsOf(as, func(a mdebridge.MachineAction) json.RawMessage { return a.Raw })
	rawPage(w, r, raws, total, offset, limit)
}

func (s *Server) getAction(w http.ResponseWriter, r *http.Request) {
	a, err := s.opts.Response.Actions.GetMachineAction(r.Context(), r.PathValue("id"))
	if err != nil {
		s.respondError(w, r, err)
		return
	}
	writeRaw(w, a.Raw)
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	jobs, err := s.opts.Response.Jobs.ListBulkJobs(r.Context(), 100)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if jobs == nil {
		jobs = []mdebridge.BulkJob{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": jobs})
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	job, err := s.opts.Response.Jobs.GetBulkJob(r.Context(), r.PathValue("id"))
	if err != nil {
		s.respondError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, job)
}

func (s *Server) resumeJob(w http.ResponseWriter, r *http.Request, actor string) {
	rep, err := s.opts.Response.Responder.Resume(r.Context(), r.PathValue("id"), actor, nil)
	if err != nil && rep == nil {
		s.respondError(w, r, err)
		return
	}
	out := map[string]any{"report": rep}
	status := http.StatusOK
	if err != nil {
		status, out["error"] = http.StatusMultiStatus, err.Error()
	}
	writeJSON(w, status, out)
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _, err := paging(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	f := mdebridge.AuditFilter{RequestID: q.Get("request"), TargetID: q.Get("target"), Actor: q.Get("actor"), Operation: q.Get("operation"), Limit: limit}
	if f.Since, err = sinceParam(q); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	es, err := s.opts.Response.Audit.FindAudit(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if es == nil {
		es = []mdebridge.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": es})
}

func (s *Server) listIndicators(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, offset, err := paging(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	retired, _ := strconv.ParseBool(q.Get("include_retired"))
	ins, total, err := s.opts.Response.Indicators.FindIndicators(r.Context(), mdebridge.IndicatorFilter{Type: q.Get("type"), Action: q.Get("action"),
		Severity: q.Get("severity"), Value: q.Get("value"), IncludeRetired: retired, Limit: limit, Offset: offset})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	raws := rawsOf(ins, func(in mdebridge.Indicator) json.RawMessage { return in.Raw })
	rawPage(w, r, raws, total, offset, limit)
}

func (s *Server) getIndicator(w http.ResponseWriter, r *http.Request) {
	in, err := s.opts.Response.Indicators.FindIndicator(r.Context(), r.PathValue("key"))
	if err != nil {
		s.respondError(w, r, err)
		return
	}
	writeRaw(w, in.Raw)
}

// postIndicators submits indicators given as JSON (one: POST, an upsert;
// more: the import API).
func (s *Server) postIndicators(w http.ResponseWriter, r *http.Request, actor string) {
	var body struct {
		Indicators []mdebridge.Indicator `json:"indicators"`
		Comment    string                `json:"comment"`
		Atomic     bool                  `json:"atomic"`
		DryRun     bool                  `json:"dryRun"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	op := "indicators.import"
	if len(body.Indicators) == 1 {
		op = "indicators.add"
	}
	rep, err := s.opts.Response.Responder.ImportIndicators(r.Context(), mdebridge.IndicatorImport{Indicators: body.Indicators,
		Comment: body.Comment, Atomic: body.Atomic, DryRun: body.DryRun, Actor: actor, Operation: op})
	s.importAnswer(w, r, rep, err)
}

// importIndicators imports a file (the body) in the format named by ?format.
func (s *Server) importIndicators(w http.ResponseWriter, r *http.Request, actor string) {
	q := r.URL.Query()
	atomic, _ := strconv.ParseBool(q.Get("atomic"))
	dryRun, _ := strconv.ParseBool(q.Get("dry_run"))
	format := q.Get("format")
	if format == "" {
		format = "csv"
	}
	rep, err := s.opts.Response.Responder.ImportIndicatorFile(r.Context(), io.LimitReader(r.Body, 256<<20), format,
		mdebridge.IndicatorImport{Comment: q.Get("comment"), Atomic: atomic, DryRun: dryRun, Actor: actor})
	s.importAnswer(w, r, rep, err)
}

func (s *Server) importAnswer(w http.ResponseWriter, r *http.Request, rep *mdebridge.IndicatorImportReport, err error) {
	switch {
	case err != nil && rep == nil:
		s.respondError(w, r, err)
	case err != nil:
		writeJSON(w, http.StatusMultiStatus, map[string]any{"report": rep, "error": err.Error()})
	case rep.Aborted != "":
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"report": rep})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"report": rep})
	}
}

func (s *Server) deleteIndicator(w http.ResponseWriter, r *http.Request, actor string) {
	comment := r.URL.Query().Get("comment")
	if comment == "" && r.ContentLength > 0 {
		var body struct {
			Comment string `json:"comment"`
		}
		if !decodeBody(w, r, &body) {
			return
		}
		comment = body.Comment
	}
	ids, err := s.opts.Response.Responder.DeleteIndicators(r.Context(), []string{r.PathValue("key")}, comment, actor)
	if err != nil {
		s.respondError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": ids})
}

// enrich reads MDE (within its rate budget) but changes nothing, so it
// needs no responder token.
func (s *Server) enrich(w http.ResponseWriter, r *http.Request) {
	if s.opts.Response.Responder == nil {
		writeError(w, http.StatusNotImplemented, "not_implemented", "this server cannot read MDE")
		return
	}
	var e *mdebridge.Enrichment
	var err error
	if kind := r.URL.Query().Get("kind"); kind != "" {
		e, err = s.opts.Response.Responder.EnrichAs(r.Context(), kind, r.PathValue("value"))
	} else {
		e, err = s.opts.Response.Responder.Enrich(r.Context(), r.PathValue("value"))
	}
	if err != nil {
		s.respondError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}
