package web

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/mdebridge/mdebridge"
)

// The alert and incident routes (openapi/20-incidents.json). Alerts are
// MDE's own objects; incidents are mdebridge's. Changes go through
// Options.IncidentService, which also sends them to MDE.

func (s *Server) addIncidentRoutes() {
	s.mux.HandleFunc("GET /api/v1/alerts", s.listAlerts)
	s.mux.HandleFunc("GET /api/v1/alerts/{id}", s.getAlert)
	s.mux.HandleFunc("PATCH /api/v1/alerts/{id}", s.changeAlert)
	s.mux.HandleFunc("GET /api/v1/incidents", s.listIncidents)
	s.mux.HandleFunc("GET /api/v1/incidents/{id}", s.getIncident)
	s.mux.HandleFunc("PATCH /api/v1/incidents/{id}", s.changeIncident)
	s.mux.HandleFunc("POST /api/v1/incidents/{id}/comments", s.commentIncident)
	s.mux.HandleFunc("GET /api/v1/incidents/{id}/events", s.incidentEvents)
}

// noIncidents answers 501 when the server has no incident store.
func (s *Server) noIncidents(w http.ResponseWriter) bool {
	if s.opts.Alerts == nil || s.opts.Incidents == nil {
		writeError(w, http.StatusNotImplemented, "not_implemented", "this server keeps no alerts or incidents")
		return true
	}
	return false
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) {
	if s.noIncidents(w) {
		return
	}
	q := r.URL.Query()
	bad := func(msg string) { writeError(w, http.StatusBadRequest, "bad_request", msg) }
	limit, offset, err := paging(q)
	if err != nil {
		bad(err.Error())
		return
	}
	f := mdebridge.AlertFilter{Severity: q.Get("severity"), Status: q.Get("status"), DetectionSource: q.Get("source"),
		Category: q.Get("category"), RBACGroup: q.Get("group"), Machine: q.Get("machine"), Entity: q.Get("entity"),
		Offset: offset, Limit: limit}
	if v := q.Get("incident"); v != "" {
		if f.Incident, err = strconv.ParseInt(v, 10, 64); err != nil {
			bad("incident must be an incident id")
			return
		}
	}
	if f.UpdatedSince, err = sinceParam(q); err != nil {
		bad(err.Error())
		return
	}
	as, total, err := s.opts.Alerts.FindAlerts(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	raws := rawsOf(as, func(a mdebridge.Alert) json.RawMessage { return a.Raw })
	rawPage(w, r, raws, total, offset, limit)
}

func (s *Server) getAlert(w http.ResponseWriter, r *http.Request) {
	if s.noIncidents(w) {
		return
	}
	a, err := s.opts.Alerts.GetAlert(r.Context(), r.PathValue("id"))
	if err != nil {
		s.lookupError(w, r, err)
		return
	}
	writeRaw(w, a.Raw)
}

func (s *Server) listIncidents(w http.ResponseWriter, r *http.Request) {
	if s.noIncidents(w) {
		return
	}
	q := r.URL.Query()
	limit, offset, err := paging(q)
	var from time.Time
	if err == nil {
		from, err = sinceParam(q)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	incs, total, err := s.opts.Incidents.FindIncidents(r.Context(), mdebridge.IncidentFilter{Status: q.Get("status"), Severity: q.Get("severity"),
		AssignedTo: q.Get("assigned_to"), UpdatedSince: from, Offset: offset, Limit: limit})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": incs, "total": total, "offset": offset, "limit": limit,
		"next": nextLink("/api/v1/incidents", q, offset, len(incs), limit, total)})
}

func incidentID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		writeError(w, http.StatusBadRequest, "bad_request", "an incident id is a positive whole number")
		return 0, false
	}
	return id, true
}

func (s *Server) getIncident(w http.ResponseWriter, r *http.Request) {
	if s.noIncidents(w) {
		return
	}
	id, ok := incidentID(w, r)
	if !ok {
		return
	}
	inc, err := s.opts.Incidents.GetIncident(r.Context(), id)
	if err != nil {
		s.lookupError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, inc)
}

// readUpdate reads a change: the fields of MDE's alert update, camelCase,
// and nothing else.
// service returns the service that changes incidents, or answers 501.
func (s *Server) service(w http.ResponseWriter) (mdebridge.IncidentService, bool) {
	if s.opts.IncidentService == nil {
		writeError(w, http.StatusNotImplemented, "not_implemented", "this server does not change incidents (the incident pipeline is off)")
		return nil, false
	}
	return s.opts.IncidentService, true
}

const apiAuthor = "mdebridge REST API"

// change reads a change from the body, as an update ({"status",
// "assignedTo", "classification", "determination", "comment"}) or, for
// comment, as {"comment"} alone, and applies it with apply.
func (s *Server) change(w http.ResponseWriter, r *http.Request, comment bool,
	apply func(mdebridge.IncidentService, mdebridge.IncidentChange) (*mdebridge.Incident, error)) {
	svc, ok := s.service(w)
	if !ok {
		return
	}
	ch := mdebridge.IncidentChange{Author: apiAuthor}
	if comment {
		var body struct {
			Comment string `json:"comment"`
		}
		if !decodeBody(w, r, &body) {
			return
		}
		if body.Comment == "" {
			writeError(w, http.StatusBadRequest, "bad_request", `the body must be {"comment":"…"}`)
			return
		}
		ch.Comment = body.Comment
	} else if !decodeBody(w, r, &ch.AlertUpdate) {
		return
	}
	inc, err := apply(svc, ch)
	if err != nil {
		s.lookupError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, inc)
}

func (s *Server) changeIncident(w http.ResponseWriter, r *http.Request) {
	if id, ok := incidentID(w, r); ok {
		s.change(w, r, false, func(svc mdebridge.IncidentService, ch mdebridge.IncidentChange) (*mdebridge.Incident, error) {
			return svc.ChangeIncident(r.Context(), id, ch)
		})
	}
}

func (s *Server) commentIncident(w http.ResponseWriter, r *http.Request) {
	if id, ok := incidentID(w, r); ok {
		s.change(w, r, true, func(svc mdebridge.IncidentService, ch mdebridge.IncidentChange) (*mdebridge.Incident, error) {
			return svc.ChangeIncident(r.Context(), id, ch)
		})
	}
}

func (s *Server) changeAlert(w http.ResponseWriter, r *http.Request) {
	s.change(w, r, false, func(svc mdebridge.IncidentService, ch mdebridge.IncidentChange) (*mdebridge.Incident, error) {
		return svc.ChangeAlert(r.Context(), r.PathValue("id"), ch)
	})
}

// incidentEvents lists an incident's events, as the sinks received them.
func (s *Server) incidentEvents(w http.ResponseWriter, r *http.Request) {
	if s.noIncidents(w) {
		return
	}
	id, ok := incidentID(w, r)
	if !ok {
		return
	}
	if _, err := s.opts.Incidents.GetIncident(r.Context(), id); err != nil {
		s.lookupError(w, r, err)
		return
	}
	evs, err := s.opts.Incidents.FindEvents(r.Context(), mdebridge.EventFilter{Incident: id, Limit: 1000})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	items := rawsOf(evs, func(e mdebridge.StoredEvent) json.RawMessage { return e.Body })
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}
