// Package hunting is mdebridge's advanced hunting service, shared by the
// CLI and the REST API: raw KQL queries, and a library of named queries
// covering the investigations XSOAR's query builders offer (lateral
// movement, persistence, file origin, process details, network
// connections, privilege escalation, tampering, cover-up), each narrowed by
// parameters (a device, a user, a file or hash, an IP, a domain, a time
// range, a row limit).
//
// Parameters reach KQL only as escaped string literals or validated
// numbers and time spans, never as query text. The package never talks to
// MDE itself: a mdebridge.HuntingQuerier runs the queries.
package hunting

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
)

// Params narrow a named query. Empty fields do not filter.
type Params struct {
	Device string // computer name (full or host part) or device id
	User   string // account name, or domain\name
	File   string // file name
	SHA1   string
	SHA256 string
	MD5    string
	IP     string
	Domain string        // a domain or URL fragment
	Since  time.Duration // how far back (default 7 days, at most 30: the data the service keeps)
	Limit  int           // rows at most (default 100, at most 100,000)
}

// Defaults and bounds of Params.
const (
	DefaultSince = 7 * 24 * time.Hour
	MaxSince     = 30 * 24 * time.Hour
	DefaultLimit = 100
	MaxLimit     = 100_000
	// MaxQueryLength bounds a raw query, well over any real one.
	MaxQueryLength = 64 << 10
)

// ParamError is a parameter a query cannot take or lacks: the caller's
// mistake, not the service's.
type ParamError struct{ Msg string }

func (e *ParamError) Error() string { return e.Msg }

func paramErrorf(format string, args ...any) *ParamError {
	return &ParamError{Msg: fmt.Sprintf(format, args...)}
}

// ParseSince reads a time range as KQL writes one: "7d", "12h", "90m".
func ParseSince(s string) (time.Duration, error) {
	m := sinceForm.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, paramErrorf("since %q is not a time range such as 7d, 12h or 90m", s)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n <= 0 {
		return 0, paramErrorf("since %q must be positive", s)
	}
	unit := map[string]time.Duration{"d": 24 * time.Hour, "h": time.Hour, "m": time.Minute}[m[2]]
	d := time.Duration(n) * unit
	if d > MaxSince {
		return 0, paramErrorf("since %q is longer than the 30 days advanced hunting keeps", s)
	}
	return d, nil
}

var sinceForm = regexp.MustCompile(`^(\d{1,6})([dhm])$`)

// Query is a named query of the library.
type Query struct {
	Name        string   `json:"name"`        // category/purpose, e.g. persistence/scheduled-task
	Description string   `json:"description"` // what it finds
	Table       string   `json:"table"`
	Params      []string `json:"params"` // the filters it takes besides device, since and limit
	// NeedsOneOf lists filters of which the query needs at least one.
	NeedsOneOf []string `json:"needsOneOf,omitempty"`

	where   string            // its own predicate
	prepare string            // operators run before the filters (extend …)
	columns map[string]string // filter -> the column it compares, when not the table's default
	tail    string            // project or summarize; "" projects the table's usual columns
	ordered bool              // tail orders the rows itself
}

// Run runs a raw query.
func Run(ctx context.Context, q mdebridge.HuntingQuerier, query string) (*mdebridge.HuntingResult, error) {
	if strings.TrimSpace(query) == "" {
		return nil, paramErrorf("the query is empty")
	}
	if len(query) > MaxQueryLength {
		return nil, paramErrorf("the query is %d bytes long; at most %d", len(query), MaxQueryLength)
	}
	return q.RunHuntingQuery(ctx, query)
}

// Named returns the KQL of a named query for p: a *mdebridge.NotFoundError
// (with near names) for an unknown name, a *ParamError for a parameter the
// query cannot take or lacks.
func Named(name string, p Params) (string, error) {
	q, err := Find(name)
	if err != nil {
		return "", err
	}
	return q.Render(p)
}

// Find looks a named query up; an unknown name gives a *mdebridge.NotFoundError
// with near matches.
func Find(name string) (Query, error) {
	lib := Library()
	for _, q := range lib {
		if strings.EqualFold(q.Name, name) {
			return q, nil
		}
	}
	var near []string
	lower := strings.ToLower(name)
	stem := lower[:min(4, len(lower))]
	for _, q := range lib {
		cat, purpose, _ := strings.Cut(q.Name, "/")
		if lower != "" && (strings.Contains(q.Name, lower) || strings.HasPrefix(cat, stem) || strings.HasPrefix(purpose, stem)) {
			near = append(near, q.Name)
		}
	}
	return Query{}, &mdebridge.NotFoundError{Kind: "hunting query", Key: name, Near: near}
}

// quote writes s as a KQL string literal.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func since(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	return strconv.Itoa(int(d/time.Minute)) + "m"
}

var deviceID = regexp.MustCompile(`^[0-9a-fA-F]{40}$`)

// defaultColumns says which column a filter compares in each table.
func defaultColumn(table, filter string) string {
	initiating := table == "DeviceNetworkEvents" || table == "DeviceRegistryEvents"
	switch filter {
	case "user":
		if initiating || table == "DeviceFileEvents" {
			return "InitiatingProcessAccountName"
		}
		return "AccountName"
	case "file":
		if initiating {
			return "InitiatingProcessFileName"
		}
		return "FileName"
	case "sha1", "sha256", "md5":
		col := strings.ToUpper(filter)
		if initiating {
			return "InitiatingProcess" + col
		}
		return col
	case "ip":
		return "RemoteIP"
	case "domain":
		return "RemoteUrl"
	}
	return ""
}

func (p Params) value(filter string) string {
	return map[string]string{"user": p.User, "file": p.File, "sha1": p.SHA1, "sha256": p.SHA256, "md5": p.MD5,
		"ip": p.IP, "domain": p.Domain}[filter]
}

// Render makes the query's KQL for p, or says which parameter is wrong.
func (q Query) Render(p Params) (string, error) {
	if p.Since == 0 {
		p.Since = DefaultSince
	}
	if p.Since < time.Minute || p.Since > MaxSince {
		return "", paramErrorf("since must be from 1m to 30d, not %s", p.Since)
	}
	if p.Limit == 0 {
		p.Limit = DefaultLimit
	}
	if p.Limit < 1 || p.Limit > MaxLimit {
		return "", paramErrorf("limit must be from 1 to %d, not %d", MaxLimit, p.Limit)
	}
	for _, f := range []string{"user", "file", "sha1", "sha256", "md5", "ip", "domain"} {
		if p.value(f) != "" && !slices.Contains(q.Params, f) {
			return "", paramErrorf("%s does not take --%s (it takes: %s)", q.Name, f, strings.Join(append([]string{"device", "since", "limit"}, q.Params...), ", "))
		}
	}
	if err := checkValues(p); err != nil {
		return "", err
	}
	if len(q.NeedsOneOf) > 0 && !slices.ContainsFunc(q.NeedsOneOf, func(f string) bool { return p.value(f) != "" }) {
		return "", paramErrorf("%s needs one of --%s", q.Name, strings.Join(q.NeedsOneOf, ", --"))
	}
	var b strings.Builder
	b.WriteString(q.Table)
	line := func(s string) { b.WriteString("\n| " + s) }
	if d := strings.TrimSpace(p.Device); d != "" {
		if deviceID.MatchString(d) {
			line("where DeviceId == " + quote(strings.ToLower(d)))
		} else {
			line("where DeviceName =~ " + quote(d) + " or DeviceName startswith " + quote(strings.ToLower(d)+"."))
		}
	}
	line("where Timestamp > ago(" + since(p.Since) + ")")
	if q.where != "" {
		line("where " + q.where)
	}
	if q.prepare != "" {
		line(q.prepare)
	}
	var conds []string
	for _, f := range q.Params {
		v := p.value(f)
		if v == "" {
			continue
		}
		col := q.columns[f]
		if col == "" {
			col = defaultColumn(q.Table, f)
		}
		switch f {
		case "user":
			if dom, name, ok := strings.Cut(v, `\`); ok {
				dcol := strings.Replace(col, "Name", "Domain", 1)
				conds = append(conds, fmt.Sprintf("(%s =~ %s and %s =~ %s)", dcol, quote(dom), col, quote(name)))
				continue
			}
			conds = append(conds, col+" =~ "+quote(v))
		case "domain":
			conds = append(conds, col+" has "+quote(v))
		case "sha1", "sha256", "md5":
			conds = append(conds, col+" =~ "+quote(v))
		default:
			conds = append(conds, col+" =~ "+quote(v))
		}
	}
	if len(conds) > 0 {
		line("where " + strings.Join(conds, " and "))
	}
	tail := q.tail
	if tail == "" {
		tail = "project " + defaultProjection[q.Table]
	}
	line(tail)
	if !q.ordered {
		line("order by Timestamp desc")
	}
	line("take " + strconv.Itoa(p.Limit))
	return b.String(), nil
}

var (
	hexHash = map[string]*regexp.Regexp{
		"sha1": regexp.MustCompile(`^[0-9a-fA-F]{40}$`), "sha256": regexp.MustCompile(`^[0-9a-fA-F]{64}$`),
		"md5": regexp.MustCompile(`^[0-9a-fA-F]{32}$`),
	}
	ipForm = regexp.MustCompile(`^[0-9a-fA-F.:]+$`)
)

// checkValues refuses values that cannot be what they claim, so that a
// typo is a clear error rather than an empty result.
func checkValues(p Params) error {
	for f, v := range map[string]string{"sha1": p.SHA1, "sha256": p.SHA256, "md5": p.MD5} {
		if v != "" && !hexHash[f].MatchString(v) {
			return paramErrorf("--%s %q is not a %s hash", f, v, strings.ToUpper(f))
		}
	}
	if p.IP != "" && !ipForm.MatchString(p.IP) {
		return paramErrorf("--ip %q is not an IP address", p.IP)
	}
	for name, v := range map[string]string{"device": p.Device, "user": p.User, "file": p.File, "domain": p.Domain} {
		if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return paramErrorf("--%s contains control characters", name)
		}
	}
	return nil
}

// defaultProjection is what a query shows when it says nothing else.
var defaultProjection = map[string]string{
	"DeviceProcessEvents": "Timestamp, DeviceName, ActionType, FileName, FolderPath, ProcessCommandLine, AccountDomain, AccountName, " +
		"ProcessIntegrityLevel, InitiatingProcessFileName, InitiatingProcessCommandLine, InitiatingProcessParentFileName, SHA1, DeviceId, ReportId",
	"DeviceNetworkEvents": "Timestamp, DeviceName, ActionType, LocalIP, LocalPort, RemoteIP, RemotePort, RemoteUrl, RemoteIPType, " +
		"InitiatingProcessFileName, InitiatingProcessCommandLine, InitiatingProcessAccountName, DeviceId, ReportId",
	"DeviceFileEvents": "Timestamp, DeviceName, ActionType, FileName, FolderPath, SHA1, SHA256, FileOriginUrl, FileOriginIP, " +
		"InitiatingProcessFileName, InitiatingProcessCommandLine, InitiatingProcessAccountName, DeviceId, ReportId",
	"DeviceRegistryEvents": "Timestamp, DeviceName, ActionType, RegistryKey, RegistryValueName, RegistryValueData, PreviousRegistryValueData, " +
		"InitiatingProcessFileName, InitiatingProcessCommandLine, InitiatingProcessAccountName, DeviceId, ReportId",
	"DeviceEvents": "Timestamp, DeviceName, ActionType, FileName, FolderPath, AccountDomain, AccountName, AdditionalFields, " +
		"InitiatingProcessFileName, InitiatingProcessCommandLine, DeviceId, ReportId",
	"DeviceLogonEvents": "Timestamp, DeviceName, ActionType, LogonType, AccountDomain, AccountName, RemoteIP, RemoteDeviceName, " +
		"FailureReason, IsLocalAdmin, DeviceId, ReportId",
}
