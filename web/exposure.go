package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mdebridge/mdebridge"
)

// The exposure routes: vulnerabilities, software, and a machine's share of
// both. Vulnerabilities are MDE's catalogue objects and rows are in the
// exports' shape (camelCase), as the CLI's -o json prints them.

func (s *Server) addExposureRoutes() {
	if s.opts.Exposure == nil {
		return
	}
	s.mux.HandleFunc("GET /api/v1/vulnerabilities", s.listVulnerabilities)
	s.mux.HandleFunc("GET /api/v1/vulnerabilities/{id}", s.getVulnerability)
	s.mux.HandleFunc("GET /api/v1/software", s.listSoftware)
	s.mux.HandleFunc("GET /api/v1/software/{id}", s.getSoftware)
	s.mux.HandleFunc("GET /api/v1/machines/{key}/exposure", s.machineExposure)
	s.mux.HandleFunc("GET /api/v1/machines/{key}/vulnerabilities", s.machineVulnerabilities)
	s.mux.HandleFunc("GET /api/v1/machines/{key}/software", s.machineSoftware)
}

func boolParam(q url.Values, name string) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errors.New(name + " must be true or false")
	}
	return b, nil
}

// deviceOf resolves a machine key (id, name or IP) to a device id; a
// 40-hex id the inventory does not know is taken as is (the exports may
// name machines the machine sync has not seen). It answers the errors.
func (s *Server) deviceOf(w http.ResponseWriter, r *http.Request, key string) (string, bool) {
	m, err := s.opts.Machines.FindMachine(r.Context(), key)
	if err == nil {
		return m.ID, true
	}
	var nf *mdebridge.NotFoundError
	if errors.As(err, &nf) && len(key) == 40 && strings.Trim(strings.ToLower(key), "0123456789abcdef") == "" {
		return strings.ToLower(key), true
	}
	s.lookupError(w, r, err)
	return "", false
}

func (s *Server) listVulnerabilities(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, offset, err := paging(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	f := mdebridge.VulnerabilityFilter{Severity: q.Get("severity"), Software: q.Get("software"), CVE: q.Get("cve"), Offset: offset, Limit: limit}
	if f.Severity != "" && mdebridge.SeverityRank(f.Severity) == 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "severity must be one of Low, Medium, High, Critical")
		return
	}
	if v := q.Get("min_cvss"); v != "" {
		if f.MinCVSS, err = strconv.ParseFloat(v, 64); err != nil || f.MinCVSS < 0 || f.MinCVSS > 10 {
			writeError(w, http.StatusBadRequest, "bad_request", "min_cvss must be a number from 0 to 10")
			return
		}
	}
	if f.ExploitOnly, err = boolParam(q, "exploit"); err == nil {
		f.IncludeUnseen, err = boolParam(q, "all")
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if m := q.Get("machine"); m != "" {
		var ok bool
		if f.Machine, ok = s.deviceOf(w, r, m); !ok {
			return
		}
	}
	vs, total, err := s.opts.Exposure.FindVulnerabilities(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	rawPage(w, r, rawsOf(vs, func(v mdebridge.VulnerabilitySummary) json.RawMessage { return v.Raw }), total, offset, limit)
}

func (s *Server) getVulnerability(w http.ResponseWriter, r *http.Request) {
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		var err error
		if limit, err = strconv.Atoi(v); err != nil || limit < 0 {
			writeError(w, http.StatusBadRequest, "bad_request", "limit must be a whole number, 0 (all) or more")
			return
		}
	}
	d, err := s.opts.Exposure.FindVulnerability(r.Context(), r.PathValue("id"), limit)
	if err != nil {
		s.lookupError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"vulnerability": json.RawMessage(d.Raw), "machines": d.Machines, "software": nonNilStrings(d.Software),
		"inCatalogue": d.InCatalogue, "exposedMachines": exposedRows(d.Exposed),
	})
}

// exposedRow is an exposed machine: the export row, and whether the
// machine inventory knows the device.
type exposedRow struct {
	Row         mdebridge.MachineVulnerability `json:"row"`
	InInventory bool                           `json:"inInventory"`
}

func exposedRows(ms []mdebridge.ExposedMachine) []exposedRow {
	out := make([]exposedRow, len(ms))
	for i, m := range ms {
		out[i] = exposedRow{m.MachineVulnerability, m.InInventory}
	}
	return out
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) listSoftware(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, offset, err := paging(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	f := mdebridge.SoftwareFilter{Vendor: q.Get("vendor"), Name: q.Get("name"), Offset: offset, Limit: limit}
	if f.Vulnerable, err = boolParam(q, "vulnerable"); err == nil {
		f.EndOfSupport, err = boolParam(q, "eos")
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if m := q.Get("machine"); m != "" {
		var ok bool
		if f.Machine, ok = s.deviceOf(w, r, m); !ok {
			return
		}
	}
	list, total, err := s.opts.Exposure.FindSoftware(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"items": list, "total": total, "offset": offset, "limit": limit,
		"next": nextLink("/api/v1/software", q, offset, len(list), limit, total),
	})
}

func (s *Server) getSoftware(w http.ResponseWriter, r *http.Request) {
	d, err := s.opts.Exposure.FindSoftwareProduct(r.Context(), r.PathValue("id"))
	if err != nil {
		s.lookupError(w, r, err)
		return
	}
	vulns := rawsOf(d.Vulnerabilities, func(v mdebridge.VulnerabilitySummary) json.RawMessage { return v.Raw })
	writeJSON(w, http.StatusOK, struct {
		mdebridge.SoftwareSummary
		Distributions   []mdebridge.SoftwareVersion `json:"distributions"`
		Vulnerabilities []json.RawMessage           `json:"vulnerabilities"`
	}{d.SoftwareSummary, d.Distributions, vulns})
}

func (s *Server) machineExposure(w http.ResponseWriter, r *http.Request) {
	id, ok := s.deviceOf(w, r, r.PathValue("key"))
	if !ok {
		return
	}
	e, err := s.opts.Exposure.MachineExposure(r.Context(), id)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (s *Server) machineVulnerabilities(w http.ResponseWriter, r *http.Request) {
	machineRows(s, w, r, s.opts.Exposure.MachineVulnerabilities)
}

func (s *Server) machineSoftware(w http.ResponseWriter, r *http.Request) {
	machineRows(s, w, r, s.opts.Exposure.MachineSoftware)
}

// machineRows answers the rows of the machine named by {key}.
func machineRows[T any](s *Server, w http.ResponseWriter, r *http.Request, rows func(context.Context, string) ([]T, error)) {
	id, ok := s.deviceOf(w, r, r.PathValue("key"))
	if !ok {
		return
	}
	list, err := rows(r.Context(), id)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": list, "total": len(list)})
}
