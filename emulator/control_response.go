package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
)

// The control API of the response surface (README.md, "Control API").

func (s *Server) addResponseControlRoutes() {
	add := func(method, template string, h func(*exchange)) {
		s.routes.add(&route{method: method, template: template, surface: surfaceControl, handle: h})
	}
	add("GET", "/_emulator/response", s.controlResponseSummary)
	add("GET", "/_emulator/machineactions/behaviour", func(x *exchange) { x.json(http.StatusOK, s.ActionBehaviour()) })
	add("PUT", "/_emulator/machineactions/behaviour", s.controlSetBehaviour)
	add("POST", "/_emulator/machineactions/{id}/complete", s.controlCompleteAction)
	add("GET", "/_emulator/machines/{id}/response", s.controlMachineResponse)
	add("POST", "/_emulator/liveresponse/library", s.controlAddLibraryFile)
}

// ActionBehaviour returns how machine actions run now.
func (s *Server) ActionBehaviour() ActionBehaviour {
	r := s.tenant.response()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.behaviour
}

// SetActionBehaviour changes how actions created from now on run.
func (s *Server) SetActionBehaviour(b ActionBehaviour) error {
	if err := b.validate(); err != nil {
		return err
	}
	r := s.tenant.response()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.behaviour = b
	return nil
}

// CompleteAction ends a machine action that is not final yet, now, with
// status (Succeeded, Failed, TimeOut or Cancelled).
func (s *Server) CompleteAction(id, status string) error {
	_, err := s.tenant.response().completeAction(id, status, s.now())
	return err
}

// MachineResponseState is what completed actions have done to a machine.
func (s *Server) MachineResponseState(key string) (MachineResponseState, bool) {
	m := s.tenant.findMachine(key)
	if m == nil {
		return MachineResponseState{}, false
	}
	return s.tenant.response().machineState(m.ID, s.now()), true
}

// MachineActionCount counts the actions ever made on a machine, of one type
// ("" for every type), including those not yet visible.
func (s *Server) MachineActionCount(machineID, typ string) int {
	return s.tenant.response().countActions(machineID, typ)
}

func (s *Server) controlResponseSummary(x *exchange) {
	r := s.tenant.response()
	now := s.now()
	r.mu.Lock()
	pending := 0
	for _, a := range r.actions {
		if !a.final(now) {
			pending++
		}
	}
	counts := map[string]int{"machineActions": len(r.actions), "pendingMachineActions": pending,
		"indicators": len(r.indicators), "investigations": len(r.investigations), "files": len(r.catalog.files), "domains": len(r.catalog.domains)}
	r.mu.Unlock()
	x.json(http.StatusOK, map[string]any{"counts": counts, "behaviour": s.ActionBehaviour(), "library": r.libraryFiles()})
}

func (s *Server) controlSetBehaviour(x *exchange) {
	// The body changes the fields it names and keeps the others.
	b := s.ActionBehaviour()
	data, err := json.Marshal(b)
	if err != nil {
		x.controlError(http.StatusInternalServerError, err.Error())
		return
	}
	var body json.RawMessage
	if !x.decodeControl(&body) {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	json.Unmarshal(data, &b)
	if err := dec.Decode(&b); err != nil {
		x.controlError(http.StatusBadRequest, "bad request body: "+err.Error())
		return
	}
	if err := s.SetActionBehaviour(b); err != nil {
		x.controlError(http.StatusBadRequest, err.Error())
		return
	}
	x.json(http.StatusOK, b)
}

func (s *Server) controlCompleteAction(x *exchange) {
	var req struct {
		Status string `json:"status"`
	}
	if !x.decodeControl(&req) {
		return
	}
	a, err := s.tenant.response().completeAction(x.param("id"), req.Status, s.now())
	if err != nil {
		status := http.StatusBadRequest
		if strings.HasPrefix(err.Error(), "no machine action") {
			status = http.StatusNotFound
		}
		x.controlError(status, err.Error())
		return
	}
	now := s.now()
	r := s.tenant.response()
	r.mu.Lock()
	v := r.view(a, now).wire(now)
	r.mu.Unlock()
	x.json(http.StatusOK, v)
}

func (s *Server) controlMachineResponse(x *exchange) {
	st, ok := s.MachineResponseState(x.param("id"))
	if !ok {
		x.controlError(http.StatusNotFound, "no machine "+x.param("id"))
		return
	}
	x.json(http.StatusOK, st)
}

func (s *Server) controlAddLibraryFile(x *exchange) {
	var req struct {
		Name string `json:"name"`
	}
	if !x.decodeControl(&req) {
		return
	}
	if strings.TrimSpace(req.Name) == "" || strings.ContainsAny(req.Name, `/\`) {
		x.controlError(http.StatusBadRequest, "name must be a file name")
		return
	}
	s.tenant.response().addLibraryFile(req.Name)
	x.json(http.StatusCreated, map[string]any{"library": s.tenant.response().libraryFiles()})
}
