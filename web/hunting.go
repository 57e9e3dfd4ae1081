package web

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/hunting"
)

// Advanced hunting and logon users over REST: the same service as the
// hunt and machines logonusers commands.

func (s *Server) addHuntingRoutes() {
	s.mux.HandleFunc("POST /api/v1/hunt", s.hunt)
	s.mux.HandleFunc("GET /api/v1/hunt/queries", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"queries": hunting.Library()})
	})
	s.mux.HandleFunc("GET /api/v1/machines/{key}/logonusers", s.machineLogonUsers)
}

// huntRequest is the body of POST /api/v1/hunt: a query, or a named query
// with its parameters.
type huntRequest struct {
	Query  string `json:"query"`
	Name   string `json:"name"`
	Params struct {
		Device string `json:"device"`
		User   string `json:"user"`
		File   string `json:"file"`
		SHA1   string `json:"sha1"`
		SHA256 string `json:"sha256"`
		MD5    string `json:"md5"`
		IP     string `json:"ip"`
		Domain string `json:"domain"`
		Since  string `json:"since"`
		Limit  int    `json:"limit"`
	} `json:"params"`
}

type huntResponse struct {
	Query     string                    `json:"query"`
	Schema    []mdebridge.HuntingColumn `json:"schema"`
	Results   []json.RawMessage         `json:"results"`
	Truncated bool                      `json:"truncated"`
}

func (s *Server) hunt(w http.ResponseWriter, r *http.Request) {
	if s.opts.Hunting == nil {
		writeError(w, http.StatusNotImplemented, "not_implemented", "this server cannot run hunting queries")
		return
	}
	var req huntRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, hunting.MaxQueryLength+4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "the body must be {\"query\": \"KQL\"} or {\"name\": \"...\", \"params\": {...}}: "+err.Error())
		return
	}
	if (req.Query == "") == (req.Name == "") {
		writeError(w, http.StatusBadRequest, "bad_request", "give either query or name")
		return
	}
	query := req.Query
	if req.Name != "" {
		rp := req.Params
		p := hunting.Params{Device: rp.Device, User: rp.User, File: rp.File, SHA1: rp.SHA1, SHA256: rp.SHA256, MD5: rp.MD5,
			IP: rp.IP, Domain: rp.Domain, Limit: rp.Limit}
		var err error
		if rp.Since != "" {
			if p.Since, err = hunting.ParseSince(rp.Since); err != nil {
				s.huntError(w, r, err)
				return
			}
		}
		if query, err = hunting.Named(req.Name, p); err != nil {
			s.huntError(w, r, err)
			return
		}
	}
	res, err := hunting.Run(r.Context(), s.opts.Hunting, query)
	if err != nil {
		s.huntError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, huntResponse{Query: query, Schema: res.Schema, Results: res.Results, Truncated: res.Truncated})
}

// huntError answers a failed hunt with what went wrong and whose fault it is.
func (s *Server) huntError(w http.ResponseWriter, r *http.Request, err error) {
	var pe *hunting.ParamError
	var nf *mdebridge.NotFoundError
	var qe *mdebridge.HuntingQueryError
	var quota *mdebridge.HuntingQuotaError
	var denied *mdebridge.PermissionError
	switch {
	case errors.As(err, &pe):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.As(err, &nf):
		writeJSON(w, http.StatusNotFound, map[string]apiError{"error": {Code: "not_found", Message: err.Error(), Candidates: nf.Near}})
	case errors.As(err, &qe):
		writeError(w, http.StatusBadRequest, "bad_query", qe.Message)
	case errors.As(err, &quota):
		if quota.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(quota.RetryAfter.Seconds()))))
		}
		writeError(w, http.StatusTooManyRequests, "quota", err.Error())
	case errors.As(err, &denied):
		writeError(w, http.StatusForbidden, "permission_denied", "mdebridge's credentials lack a permission: "+err.Error())
	case r.Context().Err() != nil:
		writeError(w, http.StatusServiceUnavailable, "cancelled", "the request ended before the query did")
	default:
		s.log.Error("hunting query failed", "err", err)
		writeError(w, http.StatusBadGateway, "upstream", "the MDE API failed: "+err.Error())
	}
}

func (s *Server) machineLogonUsers(w http.ResponseWriter, r *http.Request) {
	if s.opts.LogonUsers == nil {
		writeError(w, http.StatusNotImplemented, "not_implemented", "this server has no logon users")
		return
	}
	m, err := s.opts.Machines.FindMachine(r.Context(), r.PathValue("key"))
	if err != nil {
		s.lookupError(w, r, err)
		return
	}
	users, err := s.opts.LogonUsers.MachineLogonUsers(r.Context(), m.ID)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"machineId": m.ID, "computerDnsName": m.ComputerDNSName, "items": users})
}
