package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge/ratelimit"
)

// The machine action endpoints (mde-api.md §5.2–5.3).

// actionRoles are the permissions of which any one lets a caller cancel an
// action.
var actionRoles = []string{"Machine.CollectForensics", "Machine.Isolate", "Machine.RestrictExecution", "Machine.Scan",
	"Machine.Offboard", "Machine.StopAndQuarantine", "Machine.LiveResponse"}

// maxActionPage is the largest $top of the machine action list.
const maxActionPage = 10000

func (s *Server) addActionRoutes() {
	add := func(method, template string, roles []string, windows []ratelimit.Window, h func(*exchange)) {
		lim := defaultLimit
		if windows != nil {
			lim = limitSpec{windows: windows, code: defaultLimit.code}
		}
		s.routes.add(&route{method: method, template: template, surface: surfaceMDE, roles: roles, limit: lim, handle: h})
	}
	post := func(path, typ string, roles []string, windows []ratelimit.Window, fields ...string) {
		add("POST", "/api/machines/{id}/"+path, roles, windows, func(x *exchange) { s.postAction(x, typ, fields) })
	}
	post("isolate", typeIsolate, []string{"Machine.Isolate"}, nil, "Comment", "IsolationType")
	post("unisolate", typeUnisolate, []string{"Machine.Isolate"}, nil, "Comment")
	post("runAntiVirusScan", typeScan, []string{"Machine.Scan"}, nil, "Comment", "ScanType")
	post("collectInvestigationPackage", typeCollect, []string{"Machine.CollectForensics"}, nil, "Comment")
	post("restrictCodeExecution", typeRestrict, []string{"Machine.RestrictExecution"}, nil, "Comment")
	post("unrestrictCodeExecution", typeUnrestrict, []string{"Machine.RestrictExecution"}, nil, "Comment")
	post("StopAndQuarantineFile", typeQuarantine, []string{"Machine.StopAndQuarantine"}, nil, "Comment", "Sha1")
	post("offboard", typeOffboard, []string{"Machine.Offboard"}, nil, "Comment")
	post("runliveresponse", typeLiveResponse, []string{"Machine.LiveResponse"}, []ratelimit.Window{perMinute(10)}, "Commands", "Comment")
	add("GET", "/api/machineactions", machineRead, nil, s.listActions)
	add("GET", "/api/machineactions/{id}", machineRead, nil, s.getAction)
	add("POST", "/api/machineactions/{id}/cancel", actionRoles, nil, s.cancelAction)
	add("GET", "/api/machineactions/{id}/getPackageUri", machineRead, []ratelimit.Window{perMinute(2), perHour(120)}, s.getPackageURI)
	add("GET", "/api/machineactions/{id}/GetLiveResponseResultDownloadLink(index={index})", machineRead, nil, s.getLiveResponseResultLink)
}

// postAction creates an action of type typ on the machine named in the path.
func (s *Server) postAction(x *exchange, typ string, fields []string) {
	if typ == typeQuarantine && !x.hasRole(machineRead...) {
		// Stop and quarantine also needs a machine read permission (mde-api.md §1.5).
		x.forbidden(machineRead)
		return
	}
	body, comment, ok := x.readComment(fields...)
	if !ok {
		return
	}
	req := actionRequest{Type: typ, Comment: comment, Requestor: x.requestor()}
	id := x.param("id")
	m := s.tenant.findMachine(id)
	if m == nil {
		x.machineNotFound(id)
		return
	}
	switch typ {
	case typeIsolate:
		scope := "Full"
		if _, given := body["IsolationType"]; given {
			if scope, ok = x.bodyString(body, "IsolationType"); !ok {
				return
			}
		}
		if !slices.Contains([]string{"Full", "Selective", "UnManagedDevice"}, scope) {
			x.mdeError(http.StatusBadRequest, "InvalidInput", "Invalid input IsolationType "+scope)
			return
		}
		if scope == "Selective" && m.OSPlatform != "Windows10" && m.OSPlatform != "Windows11" {
			x.osNotSupported(m)
			return
		}
		req.Scope = some(scope)
	case typeScan:
		scan, ok := x.bodyString(body, "ScanType")
		if !ok {
			return
		}
		if scan != "Quick" && scan != "Full" {
			x.mdeError(http.StatusBadRequest, "InvalidInput", "Invalid input ScanType "+scan)
			return
		}
		req.Scope = some(scan)
	case typeQuarantine:
		sha1, ok := x.bodyString(body, "Sha1")
		if !ok {
			return
		}
		if !isHex(sha1, 40) {
			x.mdeError(http.StatusBadRequest, "InvalidHashValue", fmt.Sprintf("Hash value %s is invalid.", sha1))
			return
		}
		req.RelatedFile = &relatedFile{Identifier: strings.ToLower(sha1), Type: "Sha1"}
	case typeOffboard, typeRestrict, typeUnrestrict:
		// Offboarding through the API and app restriction are Windows only.
		if !strings.HasPrefix(m.OSPlatform, "Windows") {
			x.osNotSupported(m)
			return
		}
	case typeLiveResponse:
		cmds, ok := s.liveResponseCommands(x, body)
		if !ok {
			return
		}
		req.Commands = cmds
	}
	a, joined, err := s.tenant.response().createAction(m, req, s.now())
	switch {
	case errors.Is(err, errActiveRequest):
		x.mdeError(http.StatusBadRequest, "ActiveRequestAlreadyExists", "Action is already in progress")
		return
	case errors.Is(err, errTooManySessions):
		x.w.Header().Set("Retry-After", "60")
		x.mdeError(http.StatusTooManyRequests, "TooManyRequests",
			fmt.Sprintf("The maximum of %d concurrently running live response sessions has been reached.", maxLiveResponseSessions))
		return
	case err != nil:
		x.s.log.Error("emulator: create action", "err", err)
		x.mdeError(http.StatusInternalServerError, "InternalServerError", "")
		return
	}
	if joined {
		s.log.Info("emulator: duplicate action request answered with the pending action", "type", typ, "machine", m.ID, "action", a.ID)
	}
	x.writeAction(http.StatusCreated, a)
}

func (x *exchange) osNotSupported(m *machine) {
	x.mdeError(http.StatusBadRequest, "OsPlatformNotSupported", fmt.Sprintf("OS Platform %s isn't supported for this action.", m.OSPlatform))
}

// liveResponseCommands reads and checks "Commands" of runliveresponse.
func (s *Server) liveResponseCommands(x *exchange, body map[string]json.RawMessage) ([]lrCommand, bool) {
	raw, ok := body["Commands"]
	if !ok || string(raw) == "null" {
		x.mdeError(http.StatusBadRequest, "MissingRequiredParameter", "Parameter Commands is missing.")
		return nil, false
	}
	var in []struct {
		Type   string `json:"type"`
		Params []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"params"`
	}
	if err := json.Unmarshal(raw, &in); err != nil || len(in) == 0 {
		x.mdeError(http.StatusBadRequest, "InvalidRequestBody", "Request body is incorrect")
		return nil, false
	}
	library := s.tenant.response().libraryFiles()
	var out []lrCommand
	for _, c := range in {
		cmd := lrCommand{Type: c.Type}
		for _, p := range c.Params {
			cmd.Params = append(cmd.Params, [2]string{p.Key, p.Value})
		}
		var need string
		switch c.Type {
		case "RunScript":
			need = "ScriptName"
		case "GetFile":
			need = "Path"
		case "PutFile":
			need = "FileName"
		default:
			x.mdeError(http.StatusBadRequest, "InvalidInput", "Invalid input command type "+c.Type)
			return nil, false
		}
		v := cmd.param(need)
		if v == "" {
			x.mdeError(http.StatusBadRequest, "MissingRequiredParameter", fmt.Sprintf("Parameter %s is missing.", need))
			return nil, false
		}
		if c.Type != "GetFile" && !slices.ContainsFunc(library, func(f string) bool { return strings.EqualFold(f, v) }) {
			x.mdeError(http.StatusBadRequest, "InvalidInput", fmt.Sprintf("The file %s does not exist in the live response library.", v))
			return nil, false
		}
		out = append(out, cmd)
	}
	return out, true
}

func (x *exchange) writeAction(status int, a *machineAction) {
	now := x.s.now()
	r := x.s.tenant.response()
	r.mu.Lock()
	v := r.view(a, now).wire(now)
	r.mu.Unlock()
	x.entity(status, "MachineActions/$entity", v)
}

func (s *Server) listActions(x *exchange) {
	now := s.now()
	views := s.tenant.response().visibleActions(now)
	r := s.tenant.response()
	c := collection[actionView]{set: "MachineActions", schema: actionSchema, maxTop: maxActionPage, wire: func(v actionView) any {
		r.mu.Lock()
		defer r.mu.Unlock()
		return v.wire(now)
	}}
	c.serve(x, views)
}

// actionFromPath finds the action named in the path, answering 400 for an
// id that is not a GUID and 404 for one unknown or not yet visible.
func (s *Server) actionFromPath(x *exchange) *machineAction {
	id := x.param("id")
	if !isGUID(id) {
		x.mdeError(http.StatusBadRequest, "BadRequest", fmt.Sprintf(
			"The key value (%s) from request is not valid. The key value should be format of type 'Edm.Guid'.", id))
		return nil
	}
	a := s.tenant.response().actionByIDAt(id, s.now())
	if a == nil {
		x.mdeError(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("Machine action %s was not found", id))
		return nil
	}
	return a
}

// readComment reads a request body of fields, Comment among them, which
// MDE's response endpoints require and refuse blank.
func (x *exchange) readComment(fields ...string) (map[string]json.RawMessage, string, bool) {
	body, ok := x.readBody(fields...)
	if !ok {
		return nil, "", false
	}
	comment, ok := x.bodyString(body, "Comment")
	if !ok {
		return nil, "", false
	}
	if strings.TrimSpace(comment) == "" {
		x.mdeError(http.StatusBadRequest, "MissingRequiredParameter", "Parameter Comment is missing.")
		return nil, "", false
	}
	return body, comment, true
}

func (s *Server) getAction(x *exchange) {
	if a := s.actionFromPath(x); a != nil {
		x.writeAction(http.StatusOK, a)
	}
}

func (s *Server) cancelAction(x *exchange) {
	_, comment, ok := x.readComment("Comment")
	if !ok {
		return
	}
	a := s.actionFromPath(x)
	if a == nil {
		return
	}
	if err := s.tenant.response().cancelAction(a, x.requestor(), comment, s.now()); err != nil {
		st, _ := a.state(s.now())
		x.mdeError(http.StatusBadRequest, "InvalidInput", fmt.Sprintf("Machine action %s is %s and can no longer be cancelled.", a.ID, st))
		return
	}
	x.writeAction(http.StatusOK, a)
}

// packageLinkTTL is how long an investigation package link works (the docs
// say "short-lived" without a figure).
const packageLinkTTL = 10 * time.Minute

// resultLinkTTL is how long a live response result link works (30 minutes,
// mde-api.md §5.3).
const resultLinkTTL = 30 * time.Minute

func (x *exchange) edmString(v string) {
	b := []byte(`{"@odata.context":`)
	b = appendString(b, x.baseURL()+"/api/$metadata#Edm.String")
	b = append(b, `,"value":`...)
	b = appendString(b, v)
	x.odata(http.StatusOK, append(b, '}'))
}

func (s *Server) getPackageURI(x *exchange) {
	a := s.actionFromPath(x)
	if a == nil {
		return
	}
	if a.Type != typeCollect {
		x.mdeError(http.StatusBadRequest, "InvalidInput", "Provided Guid is not a valid id for a CollectInvestigationPackage action")
		return
	}
	now := s.now()
	if st, _ := a.state(now); st != statusSucceeded {
		x.mdeError(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("The investigation package of action %s is not available (the action is %s).", a.ID, st))
		return
	}
	x.edmString(s.packageLink(x, a, now))
}

func (s *Server) getLiveResponseResultLink(x *exchange) {
	a := s.actionFromPath(x)
	if a == nil {
		return
	}
	if a.Type != typeLiveResponse {
		x.mdeError(http.StatusBadRequest, "InvalidInput", "Provided Guid is not a valid id for a LiveResponse action")
		return
	}
	args := parseFuncArgs(x.param("args"))
	i, err := strconv.Atoi(args["index"])
	if err != nil || i < 0 || i >= len(a.Commands) {
		x.mdeError(http.StatusBadRequest, "InvalidInput", "Invalid input index "+args["index"])
		return
	}
	if a.Commands[i].Type == "PutFile" {
		x.mdeError(http.StatusBadRequest, "InvalidInput", fmt.Sprintf("Command %d (PutFile) has no result.", i))
		return
	}
	now := s.now()
	if st, _, _, _ := a.commandState(i, now); st != "Completed" {
		x.mdeError(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("The result of command %d of action %s is not available (the command is %s).", i, a.ID, st))
		return
	}
	x.edmString(s.resultLink(x, a, i, now))
}
