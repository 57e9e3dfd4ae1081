package emulator

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/mdebridge/mdebridge/emulator/odata"
	"github.com/mdebridge/mdebridge/ratelimit"
)

// Automated investigations (mde-api.md §4.5, §5.2 startInvestigation, §5.9).

// investigation is one automated investigation. Like actions, its state
// follows from the clock: Running until End, then Final.
type investigation struct {
	ID                int64
	Start             time.Time
	End               time.Time
	Final             string
	MachineID         string
	ComputerDNSName   string
	TriggeringAlertID opt[string]
}

// investigationRunTime is how long an investigation started through the API
// runs before it concludes.
const investigationRunTime = 2 * time.Minute

var investigationOutcomes = []weighted[string]{
	{"SuccessfullyRemediated", 30}, {"Benign", 35}, {"PartiallyRemediated", 8}, {"Failed", 5},
	{"TerminatedBySystem", 5}, {"PartiallyInvestigated", 7}, {"UnsupportedOs", 5}, {"TerminatedByUser", 5},
}

func (v *investigation) state(now time.Time) (string, time.Time) {
	if now.Before(v.End) {
		return "Running", time.Time{}
	}
	return v.Final, v.End
}

type investigationView struct {
	v     *investigation
	state string
	end   time.Time
}

type investigationJSON struct {
	ID                string   `json:"id"`
	StartTime         wireTime `json:"startTime"`
	EndTime           wireTime `json:"endTime"`
	State             string   `json:"state"`
	CancelledBy       *string  `json:"cancelledBy"`
	StatusDetails     *string  `json:"statusDetails"`
	MachineID         string   `json:"machineId"`
	ComputerDNSName   string   `json:"computerDnsName"`
	TriggeringAlertID *string  `json:"triggeringAlertId"`
}

func (iv investigationView) wire() any {
	v := iv.v
	j := investigationJSON{ID: strconv.FormatInt(v.ID, 10), StartTime: wireTime(v.Start), EndTime: wireTime(iv.end), State: iv.state,
		MachineID: v.MachineID, ComputerDNSName: v.ComputerDNSName, TriggeringAlertID: optPtr(v.TriggeringAlertID)}
	if iv.state == "TerminatedByUser" {
		by := "Automation"
		j.CancelledBy = &by
	}
	return j
}

var investigationSchema = odata.NewSchema(odata.SchemaOptions{TypeName: "microsoft.windowsDefenderATP.api.Investigation"},
	odata.Property[investigationView]{Name: "id", Type: odata.String, Filterable: true, Sortable: true, Get: func(v investigationView) odata.Value { return odata.Value{Str: strconv.FormatInt(v.v.ID, 10)} }},
	odata.Property[investigationView]{Name: "startTime", Type: odata.DateTime, Filterable: true, Sortable: true, Get: func(v investigationView) odata.Value { return timeValue(v.v.Start) }},
	odata.Property[investigationView]{Name: "state", Type: odata.String, Filterable: true, Sortable: true, Get: func(v investigationView) odata.Value { return odata.Value{Str: v.state} }},
	odata.Property[investigationView]{Name: "machineId", Type: odata.String, Filterable: true, Sortable: true, Get: func(v investigationView) odata.Value { return odata.Value{Str: v.v.MachineID} }},
	odata.Property[investigationView]{Name: "triggeringAlertId", Type: odata.String, Filterable: true, Sortable: true, Get: func(v investigationView) odata.Value { return optValue(v.v.TriggeringAlertID) }},
)

func (s *Server) addInvestigationRoutes() {
	read := []string{"Alert.Read.All", "Alert.ReadWrite.All"}
	s.routes.add(&route{method: "GET", template: "/api/investigations", surface: surfaceMDE, roles: read, limit: defaultLimit, handle: s.listInvestigations})
	s.routes.add(&route{method: "GET", template: "/api/investigations/{id}", surface: surfaceMDE, roles: read, limit: defaultLimit, handle: s.getInvestigation})
	s.routes.add(&route{method: "POST", template: "/api/machines/{id}/startInvestigation", surface: surfaceMDE, roles: []string{"Alert.ReadWrite.All"},
		limit: limitSpec{windows: []ratelimit.Window{perHour(50)}, code: defaultLimit.code}, handle: s.startInvestigation})
}

func (r *responseState) investigationViews(now time.Time) []investigationView {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]investigationView, 0, len(r.investigations))
	for i := len(r.investigations) - 1; i >= 0; i-- {
		v := r.investigations[i]
		st, end := v.state(now)
		out = append(out, investigationView{v: v, state: st, end: end})
	}
	return out
}

func (s *Server) listInvestigations(x *exchange) {
	c := collection[investigationView]{set: "Investigations", schema: investigationSchema, maxTop: 10000, wire: investigationView.wire}
	c.serve(x, s.tenant.response().investigationViews(s.now()))
}

func (s *Server) getInvestigation(x *exchange) {
	id := x.param("id")
	for _, v := range s.tenant.response().investigationViews(s.now()) {
		if strconv.FormatInt(v.v.ID, 10) == id {
			x.entity(http.StatusOK, "Investigations/$entity", v.wire())
			return
		}
	}
	x.mdeError(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("Investigation %s was not found", id))
}

func (s *Server) startInvestigation(x *exchange) {
	if _, _, ok := x.readComment("Comment"); !ok {
		return
	}
	id := x.param("id")
	m := s.tenant.findMachine(id)
	if m == nil {
		x.machineNotFound(id)
		return
	}
	r := s.tenant.response()
	now := s.now()
	r.mu.Lock()
	v := &investigation{ID: r.nextInvestID, Start: now, End: now.Add(investigationRunTime),
		Final: pick(r.rng, investigationOutcomes), MachineID: m.ID, ComputerDNSName: m.ComputerDNSName}
	r.nextInvestID++
	r.investigations = append(r.investigations, v)
	r.mu.Unlock()
	st, end := v.state(now)
	x.entity(http.StatusCreated, "Investigations/$entity", investigationView{v: v, state: st, end: end}.wire())
}

// generateInvestigations makes past investigations: one per 25 machines (at
// most 2,000), triggered by alerts, over the 30 days before anchor.
func (r *responseState) generateInvestigations(rng *rand.Rand, machines []*machine, anchor time.Time) {
	if len(machines) == 0 {
		return
	}
	n := min(2000, max(2, len(machines)/25))
	for range n {
		m := machines[rng.IntN(len(machines))]
		start := anchor.Add(-time.Duration(rng.Int64N(int64(30 * 24 * time.Hour)))).Truncate(time.Second)
		alert := fmt.Sprintf("da%018d_%d", 637000000000000000+rng.Int64N(999999999999999), rng.Int32())
		v := &investigation{ID: r.nextInvestID, Start: start, End: start.Add(time.Duration(5+rng.IntN(240)) * time.Minute),
			Final: pick(rng, investigationOutcomes), MachineID: m.ID, ComputerDNSName: m.ComputerDNSName, TriggeringAlertID: some(alert)}
		r.nextInvestID++
		r.investigations = append(r.investigations, v)
	}
	// Ids are handed out in start order.
	slices.SortFunc(r.investigations, func(a, b *investigation) int { return a.Start.Compare(b.Start) })
	for i, v := range r.investigations {
		v.ID = 60001 + int64(i)
	}
}
