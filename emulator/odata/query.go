package odata

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// OrderItem is one key of $orderby.
type OrderItem struct {
	Property string
	Desc     bool
}

// Query holds the system query options of one request.
type Query struct {
	Filter     Expr   // nil without $filter
	FilterText string // $filter as sent
	Top        int
	HasTop     bool
	Skip       int
	HasSkip    bool
	Select     []string // as sent; resolve with Schema.ResolveSelect
	OrderBy    []OrderItem
	Count      bool
	Expand     []string // navigation properties, as sent
}

// QueryLimits are one endpoint's rules for system query options.
type QueryLimits struct {
	// MaxTop is the largest $top accepted (10,000 for most MDE lists).
	MaxTop int
	// Options lists the system query options the endpoint accepts, lower
	// case with the dollar: "$filter", "$top", .... Any other option that
	// starts with $ is refused.
	Options []string
}

// ParseQuery reads the system query options (those starting with $) out of a
// raw URL query. Names are matched case-insensitively; other parameters are
// left to the caller.
func ParseQuery(rawQuery string, lim QueryLimits) (Query, error) {
	var q Query
	seen := map[string]bool{}
	for part := range strings.SplitSeq(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return q, errorf("The query parameter '%s' is not correctly escaped.", k)
		}
		if !strings.HasPrefix(key, "$") {
			continue
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return q, errorf("The value of query option '%s' is not correctly escaped.", key)
		}
		name := strings.ToLower(key)
		if !slices.Contains(lim.Options, name) {
			return q, errorf("The query parameter '%s' is not supported.", key)
		}
		if seen[name] {
			return q, errorf("Query option '%s' was specified more than once, but it must be specified at most once.", key)
		}
		seen[name] = true
		switch name {
		case "$filter":
			e, err := ParseFilter(val)
			if err != nil {
				return q, err
			}
			q.Filter, q.FilterText = e, val
		case "$top":
			n, err := parseNonNegative("$top", val)
			if err != nil {
				return q, err
			}
			if lim.MaxTop > 0 && n > lim.MaxTop {
				return q, errorf("The limit of '%d' for Top query has been exceeded. The value from the incoming request is '%s'.", lim.MaxTop, val)
			}
			q.Top, q.HasTop = n, true
		case "$skip":
			n, err := parseNonNegative("$skip", val)
			if err != nil {
				return q, err
			}
			q.Skip, q.HasSkip = n, true
		case "$select":
			for s := range strings.SplitSeq(val, ",") {
				s = strings.TrimSpace(s)
				if s == "" {
					return q, errorf("Syntax error at position %d in '%s'.", len(val), val)
				}
				q.Select = append(q.Select, s)
			}
		case "$orderby":
			items, err := parseOrderBy(val)
			if err != nil {
				return q, err
			}
			q.OrderBy = items
		case "$expand":
			for e := range strings.SplitSeq(val, ",") {
				if e = strings.TrimSpace(e); e == "" {
					return q, errorf("Syntax error at position %d in '%s'.", len(val), val)
				}
				q.Expand = append(q.Expand, e)
			}
		case "$count":
			switch strings.ToLower(val) {
			case "true":
				q.Count = true
			case "false":
			default:
				return q, errorf("'%s' is not a valid count option.", val)
			}
		}
	}
	return q, nil
}

func parseNonNegative(option, val string) (int, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 32)
	if err != nil || n < 0 {
		return 0, errorf("Invalid value '%s' for %s query option found. The %s query option requires a non-negative integer value.", val, option, option)
	}
	return int(n), nil
}

func parseOrderBy(val string) ([]OrderItem, error) {
	var items []OrderItem
	for part := range strings.SplitSeq(val, ",") {
		f := strings.Fields(part)
		switch {
		case len(f) == 1:
			items = append(items, OrderItem{Property: f[0]})
		case len(f) == 2 && strings.EqualFold(f[1], "asc"):
			items = append(items, OrderItem{Property: f[0]})
		case len(f) == 2 && strings.EqualFold(f[1], "desc"):
			items = append(items, OrderItem{Property: f[0], Desc: true})
		default:
			return nil, errorf("Syntax error at position %d in '%s'.", len(val), val)
		}
	}
	return items, nil
}
