package emulator

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge/emulator/odata"
	"github.com/mdebridge/mdebridge/ratelimit"
)

// The vulnerability management (TVM) endpoints (mde-api.md §5.7 and the
// per-machine ones of §5.1). They serve the current export snapshot, so that
// what they say agrees with the exports.

var (
	recommendationRead = []string{"SecurityRecommendation.Read.All"}
	scoreRead          = []string{"Score.Read.All"}
	// machineVulnsLimit is GET /api/machines/{id}/vulnerabilities' own quota.
	machineVulnsLimit = limitSpec{windows: []ratelimit.Window{perMinute(50), perHour(1500)}, code: "TooManyRequests"}
)

const (
	maxVulnerabilityPage = 8000
	maxTVMPage           = 10000
)

func (s *Server) addTVMRoutes() {
	add := func(template string, roles []string, h func(*exchange)) {
		s.routes.add(&route{method: "GET", template: template, surface: surfaceMDE, roles: roles, limit: defaultLimit, handle: h})
	}
	add("/api/vulnerabilities", vulnRead, s.listVulnerabilities)
	add("/api/vulnerabilities/machinesVulnerabilities", vulnRead, s.listMachinesVulnerabilities)
	add("/api/vulnerabilities/{id}", vulnRead, s.getVulnerability)
	add("/api/vulnerabilities/{id}/machineReferences", vulnRead, s.vulnerabilityMachines)
	add("/api/Software", softwareRead, s.listSoftware)
	add("/api/Software/{id}", softwareRead, s.getSoftware)
	add("/api/Software/{id}/distributions", softwareRead, s.softwareDistributions)
	add("/api/Software/{id}/machineReferences", softwareRead, s.softwareMachines)
	add("/api/Software/{id}/vulnerabilities", vulnRead, s.softwareVulnerabilities)
	add("/api/Software/{id}/getmissingkbs", softwareRead, s.softwareMissingKBs)
	add("/api/machines/{id}/software", softwareRead, s.machineSoftware)
	add("/api/machines/{id}/recommendations", recommendationRead, s.machineRecommendations)
	add("/api/machines/{id}/getmissingkbs", softwareRead, s.machineMissingKBs)
	add("/api/recommendations", recommendationRead, s.listRecommendations)
	add("/api/recommendations/{id}", recommendationRead, s.getRecommendation)
	add("/api/recommendations/{id}/software", softwareRead, s.recommendationSoftware)
	add("/api/recommendations/{id}/machineReferences", recommendationRead, s.recommendationMachines)
	add("/api/recommendations/{id}/vulnerabilities", vulnRead, s.recommendationVulnerabilities)
	add("/api/exposureScore", scoreRead, s.exposureScore)
	add("/api/exposureScore/ByMachineGroups", scoreRead, s.exposureScoreByGroups)
	add("/api/configurationScore", scoreRead, s.configurationScore)
	s.routes.add(&route{method: "GET", template: "/api/machines/{id}/vulnerabilities", surface: surfaceMDE, roles: vulnRead, limit: machineVulnsLimit, handle: s.machineVulnerabilities})
	s.addHuntingTable(newTVMVulnerabilitiesTable(s.tenant))
	s.addHuntingTable(newTVMInventoryTable(s.tenant))
}

// tvmNow is the snapshot the TVM entity APIs answer from.
func (s *Server) tvmNow() *tvmSnapshot { return s.tenant.snapshot(s.now()) }

// cveView is a catalogue entry as of a snapshot.
type cveView struct {
	c       *tvmCVE
	exposed int
	at      time.Time
}

func (s *tvmSnapshot) cveView(c *tvmCVE) cveView {
	return cveView{c: c, exposed: int(s.aggregates().exposed[c.ordinal]), at: s.at}
}

var cveSchema = odata.NewSchema(odata.SchemaOptions{TypeName: "microsoft.windowsDefenderATP.api.PublicVulnerabilityDto", Functions: []string{"startswith", "contains"}},
	odata.Property[cveView]{Name: "id", Type: odata.String, Filterable: true, Sortable: true, Get: func(v cveView) odata.Value { return odata.Value{Str: v.c.id} }},
	odata.Property[cveView]{Name: "name", Type: odata.String, Filterable: true, Sortable: true, Get: func(v cveView) odata.Value { return odata.Value{Str: v.c.id} }},
	odata.Property[cveView]{Name: "description", Type: odata.String, Filterable: true, Get: func(v cveView) odata.Value { return odata.Value{Str: v.c.description()} }},
	odata.Property[cveView]{Name: "severity", Type: odata.String, Filterable: true, Sortable: true, Get: func(v cveView) odata.Value { return odata.Value{Str: v.c.severity} }},
	odata.Property[cveView]{Name: "cvssV3", Type: odata.Float, Filterable: true, Sortable: true, Get: func(v cveView) odata.Value { return odata.Value{Float: v.c.cvss} }},
	odata.Property[cveView]{Name: "exposedMachines", Type: odata.Int, Sortable: true, Get: func(v cveView) odata.Value { return odata.Value{Int: int64(v.exposed)} }},
	odata.Property[cveView]{Name: "publishedOn", Type: odata.DateTime, Filterable: true, Sortable: true, Get: func(v cveView) odata.Value { return odata.Value{Time: v.c.published} }},
	odata.Property[cveView]{Name: "updatedOn", Type: odata.DateTime, Filterable: true, Sortable: true, Get: func(v cveView) odata.Value { return odata.Value{Time: v.c.updatedOn(v.at)} }},
)

// appendCVE appends a PublicVulnerabilityDto; typed adds the item's
// @odata.type, as per-machine lists carry it.
func appendCVE(b []byte, v cveView, typed bool) []byte {
	c := v.c
	b = append(b, '{')
	if typed {
		b = append(b, `"@odata.type":"#microsoft.windowsDefenderATP.api.PublicVulnerabilityDto",`...)
	}
	b = append(b, `"id":`...)
	b = appendString(b, c.id)
	b = append(b, `,"name":`...)
	b = appendString(b, c.id)
	b = append(b, `,"description":`...)
	b = appendString(b, c.description())
	b = append(b, `,"severity":`...)
	b = appendString(b, c.severity)
	b = append(b, `,"cvssV3":`...)
	b = appendFloat(b, c.cvss)
	b = append(b, `,"cvssVector":`...)
	b = appendString(b, c.vector)
	b = append(b, `,"exposedMachines":`...)
	b = strconv.AppendInt(b, int64(v.exposed), 10)
	b = append(b, `,"publishedOn":`...)
	b = appendTime(b, c.published)
	b = append(b, `,"updatedOn":`...)
	b = appendTime(b, c.updatedOn(v.at))
	b = append(b, `,"firstDetected":`...)
	if v.exposed > 0 {
		b = appendTime(b, c.published.Add(time.Duration(1+c.ordinal%47)*time.Hour+time.Duration(c.ordinal%3557)*time.Second))
	} else {
		b = append(b, "null"...)
	}
	lvl := c.exploitLevel(v.at)
	b = append(b, `,"publicExploit":`...)
	b = strconv.AppendBool(b, lvl != "NoExploit")
	b = append(b, `,"exploitVerified":`...)
	b = strconv.AppendBool(b, lvl == "ExploitIsVerified" || lvl == "ExploitIsInKit")
	b = append(b, `,"exploitInKit":`...)
	b = strconv.AppendBool(b, lvl == "ExploitIsInKit")
	b = append(b, `,"exploitTypes":`...)
	b = appendStrings(b, c.exploitTypes)
	b = append(b, `,"exploitUris":`...)
	if lvl != "NoExploit" {
		b = appendStrings(b, []string{c.exploitURI})
	} else {
		b = append(b, "[]"...)
	}
	b = append(b, `,"cveSupportability":`...)
	b = appendString(b, c.supportability)
	b = append(b, `,"tags":[],"epss":`...)
	if c.epss.OK {
		b = appendFloat(b, c.epss.V)
	} else {
		b = append(b, "null"...)
	}
	return append(b, '}')
}

// odataPage is a list answer in MDE's paging: with $top at most $top items
// and no nextLink; without, pages of max items with a $skip nextLink.
type odataPage[T any] struct {
	context string
	max     int
	count   bool // write @odata.count (the page's size), as the TVM lists do
	schema  *odata.Schema[T]
	encode  func([]byte, T) []byte
	items   func(keep func(T) bool, fn func(T) bool)
}

func (p odataPage[T]) serve(x *exchange) {
	q, err := odata.ParseQuery(x.r.URL.RawQuery, odata.QueryLimits{MaxTop: p.max, Options: []string{"$filter", "$top", "$skip", "$orderby", "$count"}})
	if err != nil {
		x.odataError(err)
		return
	}
	var keep func(T) bool
	if q.Filter != nil {
		if keep, err = p.schema.Compile(q.Filter); err != nil {
			x.odataError(err)
			return
		}
	}
	var sorter func([]T)
	if q.OrderBy != nil {
		if sorter, err = p.schema.Sorter(q.OrderBy); err != nil {
			x.odataError(err)
			return
		}
	}
	limit := p.max
	if q.HasTop {
		limit = q.Top
	}
	// Collect one more than the page when no $top, to know whether a
	// nextLink is due; everything when sorting.
	var list []T
	skipped := 0
	p.items(keep, func(v T) bool {
		if sorter == nil && skipped < q.Skip {
			skipped++
			return true
		}
		list = append(list, v)
		return sorter != nil || len(list) <= limit
	})
	if sorter != nil {
		sorter(list)
		list = list[min(q.Skip, len(list)):]
	}
	more := false
	if len(list) > limit {
		list, more = list[:limit], !q.HasTop
	}
	b := []byte(`{"@odata.context":`)
	b = appendString(b, x.baseURL()+"/api/$metadata"+p.context)
	if p.count || q.Count {
		b = append(b, `,"@odata.count":`...)
		b = strconv.AppendInt(b, int64(len(list)), 10)
	}
	b = append(b, `,"value":[`...)
	for i, v := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = p.encode(b, v)
	}
	b = append(b, ']')
	if more {
		b = append(b, `,"@odata.nextLink":`...)
		b = appendString(b, x.baseURL()+x.r.URL.EscapedPath()+"?"+withSkip(x.r.URL.RawQuery, q.Skip+limit))
	}
	b = append(b, '}')
	x.odata(http.StatusOK, b)
}

// listVulnerabilities is the CVE catalogue: every CVE published by the
// snapshot, with $top ≤ 8,000.
func (s *Server) listVulnerabilities(x *exchange) {
	snap := s.tvmNow()
	odataPage[cveView]{
		context: "#Vulnerabilities", max: maxVulnerabilityPage, count: true, schema: cveSchema,
		encode: func(b []byte, v cveView) []byte { return appendCVE(b, v, false) },
		items: func(keep func(cveView) bool, fn func(cveView) bool) {
			for _, c := range snap.model.cvesPublished(snap.at) {
				v := snap.cveView(c)
				if (keep == nil || keep(v)) && !fn(v) {
					return
				}
			}
		},
	}.serve(x)
}

// findCVE looks a published CVE up, case-insensitively.
func (s *tvmSnapshot) findCVE(id string) *tvmCVE {
	c := s.model.byID[strings.ToUpper(id)]
	if c == nil || c.published.After(s.at) {
		return nil
	}
	return c
}

func (s *Server) getVulnerability(x *exchange) {
	snap := s.tvmNow()
	c := snap.findCVE(x.param("id"))
	if c == nil {
		x.mdeError(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("Vulnerability %s was not found", x.param("id")))
		return
	}
	prefix := appendString([]byte(`{"@odata.context":`), x.baseURL()+"/api/$metadata#Vulnerabilities/$entity")
	body := appendCVE(nil, snap.cveView(c), false)
	x.odata(http.StatusOK, append(append(prefix, ','), body[1:]...))
}

// appendMachineRef appends a MachineRef {id, computerDnsName, osPlatform,
// rbacGroupName}.
func appendMachineRef(b []byte, m *machine) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, m.ID)
	b = append(b, `,"computerDnsName":`...)
	b = appendString(b, m.ComputerDNSName)
	b = append(b, `,"osPlatform":`...)
	b = appendString(b, m.OSPlatform)
	b = append(b, `,"rbacGroupName":`...)
	b = appendOptString(b, m.RBACGroupName)
	return append(b, '}')
}

// writeMachineRefs answers with machines as #MachineReferences.
func (x *exchange) writeMachineRefs(ms []*machine) {
	b := []byte(`{"@odata.context":`)
	b = appendString(b, x.baseURL()+"/api/$metadata#MachineReferences")
	b = append(b, `,"value":[`...)
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendMachineRef(b, m)
	}
	b = append(b, "]}"...)
	x.odata(http.StatusOK, b)
}

// machinesWhere lists the snapshot's machines with an install matching fn.
func (s *tvmSnapshot) machinesWhere(fn func(in *tvmInstall, n int, open []*tvmCVE) bool) []*machine {
	var out []*machine
	for i, m := range s.machines {
		hit := false
		s.eachInstall(i, func(in *tvmInstall, n int, _ time.Time, open []*tvmCVE) {
			hit = hit || fn(in, n, open)
		})
		if hit {
			out = append(out, m)
		}
	}
	return out
}

func (s *Server) vulnerabilityMachines(x *exchange) {
	snap := s.tvmNow()
	c := snap.findCVE(x.param("id"))
	if c == nil {
		x.mdeError(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("Vulnerability %s was not found", x.param("id")))
		return
	}
	x.writeMachineRefs(snap.machinesWhere(func(_ *tvmInstall, _ int, open []*tvmCVE) bool { return slices.Contains(open, c) }))
}

// assetVuln is one machine × CVE × product row of machinesVulnerabilities.
type assetVuln struct {
	m   *machine
	p   *tvmProduct
	ver string
	c   *tvmCVE
	kb  opt[string]
}

var assetVulnSchema = odata.NewSchema(odata.SchemaOptions{TypeName: "microsoft.windowsDefenderATP.api.PublicAssetVulnerabilityDto", Functions: []string{"startswith"}},
	odata.Property[assetVuln]{Name: "id", Type: odata.String, Filterable: true, Get: func(v assetVuln) odata.Value { return odata.Value{Str: v.id()} }},
	odata.Property[assetVuln]{Name: "cveId", Type: odata.String, Filterable: true, Sortable: true, Get: func(v assetVuln) odata.Value { return odata.Value{Str: v.c.id} }},
	odata.Property[assetVuln]{Name: "machineId", Type: odata.String, Filterable: true, Sortable: true, Get: func(v assetVuln) odata.Value { return odata.Value{Str: v.m.ID} }},
	odata.Property[assetVuln]{Name: "fixingKbId", Type: odata.String, Filterable: true, Get: func(v assetVuln) odata.Value { return optValue(v.kb) }},
	odata.Property[assetVuln]{Name: "productName", Type: odata.String, Filterable: true, Sortable: true, Get: func(v assetVuln) odata.Value { return odata.Value{Str: v.p.name} }},
	odata.Property[assetVuln]{Name: "productVendor", Type: odata.String, Filterable: true, Sortable: true, Get: func(v assetVuln) odata.Value { return odata.Value{Str: v.p.vendor} }},
	odata.Property[assetVuln]{Name: "productVersion", Type: odata.String, Filterable: true, Get: func(v assetVuln) odata.Value { return odata.Value{Str: v.ver} }},
	odata.Property[assetVuln]{Name: "severity", Type: odata.String, Filterable: true, Sortable: true, Get: func(v assetVuln) odata.Value { return odata.Value{Str: v.c.severity} }},
)

func (v assetVuln) id() string {
	return v.m.ID + "-_-" + v.c.id + "-_-" + v.p.vendor + "-_-" + v.p.name + "-_-" + v.ver + "-_-" + v.kb.V
}

func (s *Server) listMachinesVulnerabilities(x *exchange) {
	snap := s.tvmNow()
	odataPage[assetVuln]{
		context: "#Collection(microsoft.windowsDefenderATP.api.PublicAssetVulnerabilityDto)", max: maxTVMPage, count: true, schema: assetVulnSchema,
		encode: func(b []byte, v assetVuln) []byte {
			b = append(b, `{"id":`...)
			b = appendString(b, v.id())
			b = append(b, `,"cveId":`...)
			b = appendString(b, v.c.id)
			b = append(b, `,"machineId":`...)
			b = appendString(b, v.m.ID)
			b = append(b, `,"fixingKbId":`...)
			b = appendOptString(b, v.kb)
			b = append(b, `,"productName":`...)
			b = appendString(b, v.p.name)
			b = append(b, `,"productVendor":`...)
			b = appendString(b, v.p.vendor)
			b = append(b, `,"productVersion":`...)
			b = appendString(b, v.ver)
			b = append(b, `,"severity":`...)
			b = appendString(b, v.c.severity)
			return append(b, '}')
		},
		items: func(keep func(assetVuln) bool, fn func(assetVuln) bool) {
			for i, m := range snap.machines {
				stop := false
				snap.eachInstall(i, func(in *tvmInstall, n int, _ time.Time, open []*tvmCVE) {
					for _, c := range open {
						if stop {
							return
						}
						v := assetVuln{m: m, p: in.p, ver: snap.model.version(in.p, n), c: c}
						if c.line.fix == fixMonthlyKB {
							v.kb = snap.model.fix(in.p, c).id
						}
						if (keep == nil || keep(v)) && !fn(v) {
							stop = true
						}
					}
				})
				if stop {
					return
				}
			}
		},
	}.serve(x)
}

// softwareID is TVM's product id: vendor-_-name.
func softwareID(p *tvmProduct) string { return p.vendor + "-_-" + p.name }

func (s *tvmSnapshot) findProduct(id string) *tvmProduct {
	for _, p := range s.model.products {
		if strings.EqualFold(softwareID(p), id) && s.aggregates().perProduct[p.idx].installed > 0 {
			return p
		}
	}
	return nil
}

// softwareView is a product as /api/Software shows it.
type softwareView struct {
	p    *tvmProduct
	agg  *productAgg
	snap *tvmSnapshot
}

func (v softwareView) publicExploit() bool {
	for c := range v.agg.cves {
		if c.exploitLevel(v.snap.at) != "NoExploit" {
			return true
		}
	}
	return false
}

// impactScore is how much the exposure score would drop if the product
// were updated everywhere, in the portal's spirit.
func (v softwareView) impactScore() float64 {
	total := len(v.snap.machines)
	if total == 0 || v.agg.vulnerable == 0 {
		return 0
	}
	sum := 0.0
	for c := range v.agg.cves {
		sum += c.cvss
	}
	return math.Round(sum/float64(len(v.agg.cves))*float64(v.agg.vulnerable)/float64(total)*1e8) / 1e8
}

var softwareSchema = odata.NewSchema(odata.SchemaOptions{TypeName: "microsoft.windowsDefenderATP.api.PublicProductDto", Functions: []string{"startswith"}},
	odata.Property[softwareView]{Name: "id", Type: odata.String, Filterable: true, Sortable: true, Get: func(v softwareView) odata.Value { return odata.Value{Str: softwareID(v.p)} }},
	odata.Property[softwareView]{Name: "name", Type: odata.String, Filterable: true, Sortable: true, Get: func(v softwareView) odata.Value { return odata.Value{Str: v.p.name} }},
	odata.Property[softwareView]{Name: "vendor", Type: odata.String, Filterable: true, Sortable: true, Get: func(v softwareView) odata.Value { return odata.Value{Str: v.p.vendor} }},
	odata.Property[softwareView]{Name: "weaknesses", Type: odata.Int, Sortable: true, Get: func(v softwareView) odata.Value { return odata.Value{Int: int64(len(v.agg.cves))} }},
	odata.Property[softwareView]{Name: "exposedMachines", Type: odata.Int, Sortable: true, Get: func(v softwareView) odata.Value { return odata.Value{Int: int64(v.agg.vulnerable)} }},
)

func appendSoftware(b []byte, v softwareView) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, softwareID(v.p))
	b = append(b, `,"name":`...)
	b = appendString(b, v.p.name)
	b = append(b, `,"vendor":`...)
	b = appendString(b, v.p.vendor)
	b = append(b, `,"weaknesses":`...)
	b = strconv.AppendInt(b, int64(len(v.agg.cves)), 10)
	b = append(b, `,"publicExploit":`...)
	b = strconv.AppendBool(b, v.publicExploit())
	b = append(b, `,"activeAlert":false,"exposedMachines":`...)
	b = strconv.AppendInt(b, int64(v.agg.vulnerable), 10)
	b = append(b, `,"impactScore":`...)
	b = appendFloat(b, v.impactScore())
	return append(b, '}')
}

func (s *Server) listSoftware(x *exchange) {
	snap := s.tvmNow()
	agg := snap.aggregates()
	odataPage[softwareView]{
		context: "#Software", max: maxTVMPage, schema: softwareSchema, encode: appendSoftware,
		items: func(keep func(softwareView) bool, fn func(softwareView) bool) {
			for _, p := range snap.model.products {
				if agg.perProduct[p.idx].installed == 0 {
					continue
				}
				v := softwareView{p: p, agg: &agg.perProduct[p.idx], snap: snap}
				if (keep == nil || keep(v)) && !fn(v) {
					return
				}
			}
		},
	}.serve(x)
}

// product resolves the {id} of a /api/Software route, answering 404 itself.
func (x *exchange) product(snap *tvmSnapshot) *tvmProduct {
	p := snap.findProduct(x.param("id"))
	if p == nil {
		x.mdeError(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("Software %s was not found", x.param("id")))
	}
	return p
}

func (s *Server) getSoftware(x *exchange) {
	snap := s.tvmNow()
	if p := x.product(snap); p != nil {
		x.writeEntity("#Software/$entity", appendSoftware(nil, softwareView{p: p, agg: &snap.aggregates().perProduct[p.idx], snap: snap}))
	}
}

// writeEntity answers with one object and its @odata.context.
func (x *exchange) writeEntity(context string, obj []byte) {
	b := appendString([]byte(`{"@odata.context":`), x.baseURL()+"/api/$metadata"+context)
	if len(obj) > 2 {
		b = append(b, ',')
	}
	x.odata(http.StatusOK, append(b, obj[1:]...))
}

// writeList answers with a collection whose items enc appends.
func writeList[T any](x *exchange, context string, items []T, enc func([]byte, T) []byte) {
	b := appendString([]byte(`{"@odata.context":`), x.baseURL()+"/api/$metadata"+context)
	b = append(b, `,"value":[`...)
	for i, v := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = enc(b, v)
	}
	x.odata(http.StatusOK, append(b, "]}"...))
}

func (s *Server) softwareDistributions(x *exchange) {
	snap := s.tvmNow()
	p := x.product(snap)
	if p == nil {
		return
	}
	agg := &snap.aggregates().perProduct[p.idx]
	steps := make([]int, 0, len(agg.versions))
	for n := range agg.versions {
		steps = append(steps, n)
	}
	slices.Sort(steps)
	writeList(x, "#Distributions", steps, func(b []byte, n int) []byte {
		open := 0
		snap.model.openCVEs(p, n, snap.at, func(*tvmCVE) bool { open++; return true })
		b = append(b, `{"version":`...)
		b = appendString(b, snap.model.version(p, n))
		b = append(b, `,"installations":`...)
		b = strconv.AppendInt(b, int64(agg.versions[n].installations), 10)
		b = append(b, `,"vulnerabilities":`...)
		b = strconv.AppendInt(b, int64(open), 10)
		return append(b, '}')
	})
}

func (s *Server) softwareMachines(x *exchange) {
	snap := s.tvmNow()
	if p := x.product(snap); p != nil {
		x.writeMachineRefs(snap.machinesWhere(func(in *tvmInstall, _ int, _ []*tvmCVE) bool { return in.p == p }))
	}
}

// productCVEs are the CVEs open on some machine in p, in catalogue order.
func (s *tvmSnapshot) productCVEs(p *tvmProduct) []*tvmCVE {
	var out []*tvmCVE
	for c := range s.aggregates().perProduct[p.idx].cves {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ordinal < out[j].ordinal })
	return out
}

func (s *Server) softwareVulnerabilities(x *exchange) {
	snap := s.tvmNow()
	if p := x.product(snap); p != nil {
		writeList(x, "#Collection(Analytics.Contracts.PublicAPI.PublicVulnerabilityDto)", snap.productCVEs(p),
			func(b []byte, c *tvmCVE) []byte { return appendCVE(b, snap.cveView(c), false) })
	}
}

// missingKB is one security update some machines lack.
type missingKB struct {
	id, name, url string
	products      map[string]bool
	machines      map[*machine]bool
	cves          map[*tvmCVE]bool
}

// missingKBs gathers the Microsoft updates the given machines lack, for the
// products p selects.
func (s *tvmSnapshot) missingKBs(machines []int, want func(*tvmProduct) bool) []*missingKB {
	byID := map[string]*missingKB{}
	for _, i := range machines {
		m := s.machines[i]
		s.eachInstall(i, func(in *tvmInstall, n int, _ time.Time, open []*tvmCVE) {
			if in.p.line.fix != fixMonthlyKB || !want(in.p) {
				return
			}
			for _, c := range open {
				f := s.model.fix(in.p, c)
				kb := byID[f.id.V]
				if kb == nil {
					kb = &missingKB{id: f.id.V, name: f.update.V, url: f.url.V, products: map[string]bool{}, machines: map[*machine]bool{}, cves: map[*tvmCVE]bool{}}
					byID[f.id.V] = kb
				}
				kb.products[in.p.name] = true
				kb.machines[m] = true
				kb.cves[c] = true
			}
		})
	}
	out := make([]*missingKB, 0, len(byID))
	for _, kb := range byID {
		out = append(out, kb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func appendMissingKB(b []byte, kb *missingKB) []byte {
	names := make([]string, 0, len(kb.products))
	for n := range kb.products {
		names = append(names, n)
	}
	slices.Sort(names)
	b = append(b, `{"id":`...)
	b = appendString(b, kb.id)
	b = append(b, `,"name":`...)
	b = appendString(b, kb.name)
	b = append(b, `,"productsNames":`...)
	b = appendStrings(b, names)
	b = append(b, `,"url":`...)
	b = appendString(b, kb.url)
	b = append(b, `,"machineMissedOn":`...)
	b = strconv.AppendInt(b, int64(len(kb.machines)), 10)
	b = append(b, `,"cveAddressed":`...)
	b = strconv.AppendInt(b, int64(len(kb.cves)), 10)
	return append(b, '}')
}

const missingKBContext = "#Collection(microsoft.windowsDefenderATP.api.PublicProductFixDto)"

func allIndexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func (s *Server) softwareMissingKBs(x *exchange) {
	snap := s.tvmNow()
	if p := x.product(snap); p != nil {
		writeList(x, missingKBContext, snap.missingKBs(allIndexes(len(snap.machines)), func(q *tvmProduct) bool { return q == p }), appendMissingKB)
	}
}

// snapshotMachine resolves the {id} of a per-machine route, answering 404
// itself; -1 means the machine joined after the snapshot (it has no TVM
// data yet).
func (x *exchange) snapshotMachine(snap *tvmSnapshot) (int, bool) {
	m := x.s.tenant.findMachine(x.param("id"))
	if m == nil {
		x.machineNotFound(x.param("id"))
		return 0, false
	}
	for i, sm := range snap.machines {
		if strings.EqualFold(sm.ID, m.ID) {
			return i, true
		}
	}
	return -1, true
}

func (s *Server) machineVulnerabilities(x *exchange) {
	snap := s.tvmNow()
	i, ok := x.snapshotMachine(snap)
	if !ok {
		return
	}
	var cves []*tvmCVE
	if i >= 0 {
		seen := map[*tvmCVE]bool{}
		snap.eachInstall(i, func(_ *tvmInstall, _ int, _ time.Time, open []*tvmCVE) {
			for _, c := range open {
				if !seen[c] {
					seen[c] = true
					cves = append(cves, c)
				}
			}
		})
	}
	// The live service types each item and counts the page.
	b := appendString([]byte(`{"@odata.context":`), x.baseURL()+"/api/$metadata#Vulnerabilities/microsoft.windowsDefenderATP.api.PublicVulnerabilityDto")
	b = append(b, `,"@odata.count":`...)
	b = strconv.AppendInt(b, int64(len(cves)), 10)
	b = append(b, `,"value":[`...)
	for k, c := range cves {
		if k > 0 {
			b = append(b, ',')
		}
		b = appendCVE(b, snap.cveView(c), true)
	}
	x.odata(http.StatusOK, append(b, "]}"...))
}

func (s *Server) machineSoftware(x *exchange) {
	snap := s.tvmNow()
	i, ok := x.snapshotMachine(snap)
	if !ok {
		return
	}
	var views []softwareView
	if i >= 0 {
		agg := snap.aggregates()
		snap.eachInstall(i, func(in *tvmInstall, _ int, _ time.Time, _ []*tvmCVE) {
			views = append(views, softwareView{p: in.p, agg: &agg.perProduct[in.p.idx], snap: snap})
		})
	}
	writeList(x, "#Software", views, appendSoftware)
}

func (s *Server) machineMissingKBs(x *exchange) {
	snap := s.tvmNow()
	i, ok := x.snapshotMachine(snap)
	if !ok {
		return
	}
	var kbs []*missingKB
	if i >= 0 {
		kbs = snap.missingKBs([]int{i}, func(*tvmProduct) bool { return true })
	}
	writeList(x, missingKBContext, kbs, appendMissingKB)
}

// recommendation is a security recommendation: update a vulnerable product
// (va-_-vendor-_-name) or fix a configuration (sca-_-scid-n).
type recommendation struct {
	p       *tvmProduct   // software recommendations
	cfg     *secureConfig // configuration recommendations
	exposed []*machine
	total   int
	cves    []*tvmCVE
	snap    *tvmSnapshot
}

func (r *recommendation) id() string {
	if r.p != nil {
		return "va-_-" + r.p.vendor + "-_-" + r.p.name
	}
	return "sca-_-" + r.cfg.id
}

// recommendations lists the snapshot's recommendations for the machines
// selected (all when only is negative).
func (s *tvmSnapshot) recommendations(only int) []*recommendation {
	perProduct := map[*tvmProduct]*recommendation{}
	perConfig := map[*secureConfig]*recommendation{}
	var out []*recommendation
	for i, m := range s.machines {
		if only >= 0 && i != only {
			continue
		}
		s.eachInstall(i, func(in *tvmInstall, _ int, _ time.Time, open []*tvmCVE) {
			r := perProduct[in.p]
			if r == nil {
				r = &recommendation{p: in.p, snap: s}
				perProduct[in.p] = r
				out = append(out, r)
			}
			r.total++
			if len(open) > 0 {
				r.exposed = append(r.exposed, m)
			}
		})
		for _, c := range secureConfigsFor(m) {
			r := perConfig[c]
			if r == nil {
				r = &recommendation{cfg: c, snap: s}
				perConfig[c] = r
				out = append(out, r)
			}
			r.total++
			if !s.model.compliant(m, c) {
				r.exposed = append(r.exposed, m)
			}
		}
	}
	kept := out[:0]
	for _, r := range out {
		if len(r.exposed) == 0 {
			continue
		}
		if r.p != nil {
			r.cves = s.productCVEs(r.p)
		}
		kept = append(kept, r)
	}
	return kept
}

func (r *recommendation) appendTo(b []byte) []byte {
	s := r.snap
	critical := 0
	for _, m := range r.exposed {
		if m.DeviceValue.OK && m.DeviceValue.V == "High" {
			critical++
		}
	}
	exposure := 0.0
	if len(s.machines) > 0 {
		exposure = float64(len(r.exposed)) / float64(len(s.machines)) * 100 / 4
	}
	b = append(b, `{"id":`...)
	b = appendString(b, r.id())
	if r.p != nil {
		p := r.p
		publicExploit := slices.ContainsFunc(r.cves, func(c *tvmCVE) bool { return c.exploitLevel(s.at) != "NoExploit" })
		action, remediation := "Update ", "Update"
		if p.eos.Before(s.at) && !p.eos.IsZero() {
			action, remediation = "Upgrade ", "Upgrade"
		}
		b = append(b, `,"productName":`...)
		b = appendString(b, p.name)
		b = append(b, `,"recommendationName":`...)
		b = appendString(b, action+p.display)
		b = append(b, `,"weaknesses":`...)
		b = strconv.AppendInt(b, int64(len(r.cves)), 10)
		b = append(b, `,"vendor":`...)
		b = appendString(b, p.vendor)
		b = append(b, `,"recommendedVersion":`...)
		b = appendString(b, s.model.version(p, s.model.stepAt(p.line, s.at)))
		b = append(b, `,"recommendationCategory":`...)
		b = appendString(b, p.line.category)
		b = append(b, `,"subCategory":"","severityScore":0,"publicExploit":`...)
		b = strconv.AppendBool(b, publicExploit)
		b = append(b, `,"activeAlert":false,"associatedThreats":[],"remediationType":`...)
		b = appendString(b, remediation)
		b = append(b, `,"status":"Active","configScoreImpact":0,"exposureImpact":`...)
		b = appendFloat(b, exposure)
	} else {
		c := r.cfg
		b = append(b, `,"productName":"","recommendationName":`...)
		b = appendString(b, c.name)
		b = append(b, `,"weaknesses":0,"vendor":"","recommendedVersion":"","recommendationCategory":`...)
		b = appendString(b, c.category)
		b = append(b, `,"subCategory":`...)
		b = appendString(b, c.subcategory)
		b = append(b, `,"severityScore":`...)
		b = strconv.AppendInt(b, int64(c.impact), 10)
		b = append(b, `,"publicExploit":false,"activeAlert":false,"associatedThreats":[],"remediationType":"ConfigurationChange","status":"Active","configScoreImpact":`...)
		b = strconv.AppendInt(b, int64(c.impact), 10)
		b = append(b, `,"exposureImpact":0`...)
	}
	b = append(b, `,"totalMachineCount":`...)
	b = strconv.AppendInt(b, int64(r.total), 10)
	b = append(b, `,"exposedMachinesCount":`...)
	b = strconv.AppendInt(b, int64(len(r.exposed)), 10)
	b = append(b, `,"nonProductivityImpactedAssets":0,"relatedComponent":`...)
	if r.p != nil {
		b = appendString(b, r.p.display)
	} else {
		b = appendString(b, strings.TrimSpace(r.cfg.subcategory+" "+r.cfg.category))
	}
	b = append(b, `,"tags":[],"exposedCriticalDevices":`...)
	b = strconv.AppendInt(b, int64(critical), 10)
	return append(b, '}')
}

func (s *Server) listRecommendations(x *exchange) {
	recs := s.tvmNow().recommendations(-1)
	writeList(x, "#Recommendations", recs, func(b []byte, r *recommendation) []byte { return r.appendTo(b) })
}

func (s *Server) machineRecommendations(x *exchange) {
	snap := s.tvmNow()
	i, ok := x.snapshotMachine(snap)
	if !ok {
		return
	}
	var recs []*recommendation
	if i >= 0 {
		recs = snap.recommendations(i)
	}
	writeList(x, "#Recommendations", recs, func(b []byte, r *recommendation) []byte { return r.appendTo(b) })
}

// recommendationByID resolves a recommendation's {id}, answering 404 itself.
func (x *exchange) recommendationByID(snap *tvmSnapshot) *recommendation {
	for _, r := range snap.recommendations(-1) {
		if strings.EqualFold(r.id(), x.param("id")) {
			return r
		}
	}
	x.mdeError(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("Recommendation %s was not found", x.param("id")))
	return nil
}

func (s *Server) getRecommendation(x *exchange) {
	if r := x.recommendationByID(s.tvmNow()); r != nil {
		x.writeEntity("#Recommendations/$entity", r.appendTo(nil))
	}
}

// recommendationSoftware answers a single product object, not a collection,
// as the docs show.
func (s *Server) recommendationSoftware(x *exchange) {
	snap := s.tvmNow()
	r := x.recommendationByID(snap)
	if r == nil {
		return
	}
	if r.p == nil {
		x.mdeError(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("No software is related to recommendation %s", r.id()))
		return
	}
	x.writeEntity("#Analytics.Contracts.PublicAPI.PublicProductDto", appendSoftware(nil, softwareView{p: r.p, agg: &snap.aggregates().perProduct[r.p.idx], snap: snap}))
}

func (s *Server) recommendationMachines(x *exchange) {
	if r := x.recommendationByID(s.tvmNow()); r != nil {
		x.writeMachineRefs(r.exposed)
	}
}

func (s *Server) recommendationVulnerabilities(x *exchange) {
	snap := s.tvmNow()
	if r := x.recommendationByID(snap); r != nil {
		writeList(x, "#Collection(Analytics.Contracts.PublicAPI.PublicVulnerabilityDto)", r.cves,
			func(b []byte, c *tvmCVE) []byte { return appendCVE(b, snap.cveView(c), false) })
	}
}

// scoreTime is when the scores were computed: the snapshot, with the
// sub-second part the live service shows.
func scoreTime(snap *tvmSnapshot) time.Time {
	return snap.at.Add(time.Duration(snap.at.Unix()%997)*time.Millisecond + 280499*time.Microsecond)
}

func appendScore(b []byte, at time.Time, score float64) []byte {
	b = append(b, `{"time":`...)
	b = appendTime(b, at)
	b = append(b, `,"score":`...)
	b = appendFloat(b, score)
	return append(b, '}')
}

func (s *Server) exposureScore(x *exchange) {
	snap := s.tvmNow()
	agg := snap.aggregates()
	total := 0.0
	for _, v := range agg.machineScore {
		total += v
	}
	score := 0.0
	if len(agg.machineScore) > 0 {
		score = total / float64(len(agg.machineScore))
	}
	x.writeEntity("#ExposureScore/$entity", appendScore(nil, scoreTime(snap), score))
}

func (s *Server) exposureScoreByGroups(x *exchange) {
	snap := s.tvmNow()
	agg := snap.aggregates()
	names := make([]string, 0, len(agg.perGroup))
	for n := range agg.perGroup {
		names = append(names, n)
	}
	slices.Sort(names)
	at := scoreTime(snap)
	writeList(x, "#ExposureScore", names, func(b []byte, n string) []byte {
		g := agg.perGroup[n]
		b = appendScore(b, at, g.score/float64(g.machines))
		b = b[:len(b)-1]
		b = append(b, `,"rbacGroupName":`...)
		b = appendString(b, n)
		return append(b, '}')
	})
}

// configurationScore is Microsoft Secure Score for Devices: the share of
// compliant checks, weighted by impact, on a 0..1000 scale.
func (s *Server) configurationScore(x *exchange) {
	snap := s.tvmNow()
	var got, possible int
	for _, m := range snap.machines {
		for _, c := range secureConfigsFor(m) {
			possible += c.impact
			if snap.model.compliant(m, c) {
				got += c.impact
			}
		}
	}
	score := 0.0
	if possible > 0 {
		score = math.Round(float64(got) / float64(possible) * 1000)
	}
	x.writeEntity("#ConfigurationScore/$entity", appendScore(nil, scoreTime(snap), score))
}
