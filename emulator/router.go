package emulator

import (
	"slices"
	"strings"
)

// surface is which Microsoft service (or the emulator itself) a route
// belongs to; it decides authentication, error shapes and accounting.
type surface int

const (
	surfaceEntra   surface = iota // login.microsoftonline.com: /{tenant}/...
	surfaceMDE                    // api.securitycenter.microsoft.com: /api/...
	surfaceControl                // the emulator's own /_emulator/... API
	surfaceFiles                  // pre-signed download links (investigation packages, live response results): no bearer token
	// Hook points for later: surfaceARM (/subscriptions/...), surfaceGraph (/v1.0/...).
)

type segKind int

// Segment kinds in increasing specificity: a literal beats a function-style
// segment, which beats a parameter.
const (
	segParam   segKind = iota // {id}
	segFunc                   // findbyip(...): a literal prefix and an argument list
	segLiteral                // machines
)

type segment struct {
	kind segKind
	lit  string // lower case; for segFunc the prefix up to and including "("
	name string // parameter name; for segFunc "args"
}

type route struct {
	method   string
	template string // e.g. "/api/machines/{id}"
	key      string // "GET /api/machines/{id}": the name in stats, faults and rate limits
	segs     []segment
	surface  surface
	roles    []string  // MDE: the application permissions of which any one suffices
	limit    limitSpec // MDE: the documented quota
	handle   func(*exchange)
}

func parseTemplate(t string) []segment {
	var segs []segment
	for _, s := range strings.Split(strings.Trim(t, "/"), "/") {
		switch {
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			segs = append(segs, segment{kind: segParam, name: s[1 : len(s)-1]})
		case strings.Contains(s, "("):
			i := strings.Index(s, "(")
			segs = append(segs, segment{kind: segFunc, lit: strings.ToLower(s[:i+1]), name: "args"})
		default:
			segs = append(segs, segment{kind: segLiteral, lit: strings.ToLower(s)})
		}
	}
	return segs
}

// router matches request paths to routes case-insensitively, the way
// Microsoft's services do (the docs mix /api/Machines, /API/machines,
// /api/machines/GetPackageUri ...).
type router struct {
	routes []*route
}

func (rt *router) add(r *route) {
	r.segs = parseTemplate(r.template)
	r.key = r.method + " " + r.template
	rt.routes = append(rt.routes, r)
}

// splitPath cuts a URL path into segments, dropping the optional /api/v1.0
// version segment (v1.0 is the only version there is).
func splitPath(path string) []string {
	path = strings.Trim(path, "/")
	if path == "" {
		return nil
	}
	segs := strings.Split(path, "/")
	if len(segs) >= 2 && strings.EqualFold(segs[0], "api") && strings.EqualFold(segs[1], "v1.0") {
		segs = append(segs[:1], segs[2:]...)
	}
	return segs
}

// matchSegments returns the parameter values of r for segs, or false.
func (r *route) matchSegments(segs []string) ([]string, bool) {
	if len(segs) != len(r.segs) {
		return nil, false
	}
	var params []string
	for i, s := range r.segs {
		v := segs[i]
		switch s.kind {
		case segLiteral:
			if !strings.EqualFold(v, s.lit) {
				return nil, false
			}
		case segFunc:
			if len(v) < len(s.lit)+1 || !strings.EqualFold(v[:len(s.lit)], s.lit) || v[len(v)-1] != ')' {
				return nil, false
			}
			params = append(params, v[len(s.lit):len(v)-1])
		case segParam:
			if v == "" {
				return nil, false
			}
			params = append(params, v)
		}
	}
	return params, true
}

// moreSpecific reports whether a's path template is more specific than b's.
func moreSpecific(a, b *route) bool {
	for i := range a.segs {
		if a.segs[i].kind != b.segs[i].kind {
			return a.segs[i].kind > b.segs[i].kind
		}
	}
	return false
}

// match finds the most specific route for method and path. When the path
// matches routes but none of them has the method, allow lists the methods
// that would have worked.
func (rt *router) match(method, path string) (r *route, params []string, allow []string) {
	segs := splitPath(path)
	for _, c := range rt.routes {
		p, ok := c.matchSegments(segs)
		if !ok {
			continue
		}
		if !strings.EqualFold(c.method, method) {
			if !slices.Contains(allow, c.method) {
				allow = append(allow, c.method)
			}
			continue
		}
		if r == nil || moreSpecific(c, r) {
			r, params = c, p
		}
	}
	if r != nil {
		return r, params, nil
	}
	slices.Sort(allow)
	return nil, nil, allow
}

// byKey finds a route by its key ("GET /api/machines") or, with any
// method, its template ("/api/machines"); case-insensitive.
func (rt *router) byKey(key string) []*route {
	var out []*route
	for _, r := range rt.routes {
		if strings.EqualFold(r.key, key) || strings.EqualFold(r.template, key) {
			out = append(out, r)
		}
	}
	return out
}

// param returns the value of the named path parameter.
func (x *exchange) param(name string) string {
	i := 0
	for _, s := range x.route.segs {
		if s.kind == segLiteral {
			continue
		}
		if s.name == name {
			if i < len(x.params) {
				return x.params[i]
			}
			return ""
		}
		i++
	}
	return ""
}
