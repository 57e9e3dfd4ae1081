package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
)

// The control API under /_emulator/ is the emulator's own, not Microsoft's:
// unauthenticated, never counted in stats, never throttled. README.md
// documents it.

func (s *Server) addControlRoutes() {
	add := func(method, template string, h func(*exchange)) {
		s.routes.add(&route{method: method, template: template, surface: surfaceControl, handle: h})
	}
	add("GET", "/_emulator/stats", func(x *exchange) { x.json(http.StatusOK, s.Stats()) })
	add("DELETE", "/_emulator/stats", func(x *exchange) { s.ResetStats(); x.empty(http.StatusNoContent) })
	add("GET", "/_emulator/tenant", s.controlTenant)
	add("POST", "/_emulator/apps", s.controlCreateApp)
	add("POST", "/_emulator/machines", s.controlAddMachines)
	add("DELETE", "/_emulator/machines/{id}", s.controlRemoveMachine)
	add("GET", "/_emulator/faults", func(x *exchange) { x.json(http.StatusOK, map[string]any{"faults": s.Faults()}) })
	add("POST", "/_emulator/faults", s.controlAddFault)
	add("DELETE", "/_emulator/faults", func(x *exchange) { s.ClearFaults(); x.empty(http.StatusNoContent) })
	add("DELETE", "/_emulator/faults/{id}", s.controlRemoveFault)
	add("GET", "/_emulator/ratelimits", func(x *exchange) {
		x.json(http.StatusOK, map[string]string{"rateLimits": s.RateLimits().String()})
	})
	add("PUT", "/_emulator/ratelimits", s.controlSetRateLimits)
	add("DELETE", "/_emulator/ratelimits", func(x *exchange) { s.ResetRateLimits(); x.empty(http.StatusNoContent) })
}

// controlError answers a bad control request: {"error":"..."}.
func (x *exchange) controlError(status int, msg string) {
	x.s.log.Warn("emulator: control request refused", "route", x.route.key, "status", status, "error", msg)
	x.json(status, map[string]string{"error": msg})
}

// decodeControl reads a JSON body strictly: unknown fields are errors, so
// that a typo in a test's request does not pass silently.
func (x *exchange) decodeControl(v any) bool {
	dec := json.NewDecoder(io.LimitReader(x.r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		x.controlError(http.StatusBadRequest, "bad request body: "+err.Error())
		return false
	}
	return true
}

func (s *Server) controlTenant(x *exchange) {
	logonPairs, logonAccounts := s.tenant.LogonUserCounts(s.now())
	x.json(http.StatusOK, map[string]any{
		"tenantId":    s.tenant.ID(),
		"domain":      s.tenant.Domain(),
		"displayName": s.tenant.DisplayName(),
		"counts": map[string]int{"machines": s.tenant.MachineCount(), "alerts": s.tenant.AlertCount(),
			"logonUsers": logonAccounts, "machineLogonUsers": logonPairs},
	})
}

func (s *Server) controlCreateApp(x *exchange) {
	var spec AppSpec
	if !x.decodeControl(&spec) {
		return
	}
	creds, err := s.CreateApp(spec)
	if err != nil {
		x.controlError(http.StatusBadRequest, err.Error())
		return
	}
	x.json(http.StatusCreated, creds)
}

// maxAddMachines bounds one POST /_emulator/machines.
const maxAddMachines = 1_000_000

func (s *Server) controlAddMachines(x *exchange) {
	var req struct {
		Count int    `json:"count"`
		Seed  *int64 `json:"seed"`
	}
	if !x.decodeControl(&req) {
		return
	}
	if req.Count < 1 || req.Count > maxAddMachines {
		x.controlError(http.StatusBadRequest, "count must be from 1 to "+strconv.Itoa(maxAddMachines))
		return
	}
	seed := s.now().UnixNano()
	if req.Seed != nil {
		seed = *req.Seed
	}
	ids := s.tenant.AddMachines(req.Count, seed)
	s.log.Info("emulator: machines added", "count", len(ids), "total", s.tenant.MachineCount())
	x.json(http.StatusCreated, map[string]any{"ids": ids})
}

func (s *Server) controlRemoveMachine(x *exchange) {
	if !s.tenant.RemoveMachine(x.param("id")) {
		x.controlError(http.StatusNotFound, "no machine with id "+x.param("id"))
		return
	}
	x.empty(http.StatusNoContent)
}

func (s *Server) controlAddFault(x *exchange) {
	var f Fault
	if !x.decodeControl(&f) {
		return
	}
	added, err := s.AddFault(f)
	if err != nil {
		x.controlError(http.StatusBadRequest, err.Error())
		return
	}
	x.json(http.StatusCreated, added)
}

func (s *Server) controlRemoveFault(x *exchange) {
	id, err := strconv.Atoi(x.param("id"))
	if err != nil || !s.RemoveFault(id) {
		x.controlError(http.StatusNotFound, "no fault with id "+x.param("id"))
		return
	}
	x.empty(http.StatusNoContent)
}

func (s *Server) controlSetRateLimits(x *exchange) {
	var req struct {
		RateLimits string `json:"rateLimits"`
	}
	if !x.decodeControl(&req) {
		return
	}
	r, err := ParseRateLimits(req.RateLimits)
	if err != nil {
		x.controlError(http.StatusBadRequest, err.Error())
		return
	}
	if err := s.SetRateLimits(r); err != nil {
		x.controlError(http.StatusBadRequest, err.Error())
		return
	}
	x.json(http.StatusOK, map[string]string{"rateLimits": r.String()})
}
