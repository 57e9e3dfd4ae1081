package odata_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdebridge/mdebridge/emulator/odata"
)

type device struct {
	Name   string
	Health string
	Risk   *string
	Group  int64
	Seen   time.Time
	Tags   []string
	AADID  *string
	Hidden string
}

func str(s string) *string { return &s }

func optStr(s *string) odata.Value {
	if s == nil {
		return odata.Value{Null: true}
	}
	return odata.Value{Str: *s}
}

var schema = odata.NewSchema(odata.SchemaOptions{TypeName: "test.Device", Functions: []string{"startswith"}},
	odata.Property[*device]{Name: "computerDnsName", Type: odata.String, Filterable: true, Sortable: true, Get: func(d *device) odata.Value { return odata.Value{Str: d.Name} }},
	odata.Property[*device]{Name: "healthStatus", Type: odata.String, Filterable: true, Sortable: true, Get: func(d *device) odata.Value { return odata.Value{Str: d.Health} }},
	odata.Property[*device]{Name: "riskScore", Type: odata.String, Filterable: true, Sortable: true, Get: func(d *device) odata.Value { return optStr(d.Risk) }},
	odata.Property[*device]{Name: "rbacGroupId", Type: odata.Int, Filterable: true, Sortable: true, Get: func(d *device) odata.Value { return odata.Value{Int: d.Group} }},
	odata.Property[*device]{Name: "lastSeen", Type: odata.DateTime, Filterable: true, Sortable: true, Get: func(d *device) odata.Value { return odata.Value{Time: d.Seen} }},
	odata.Property[*device]{Name: "machineTags", Type: odata.StringCollection, Filterable: true, Get: func(d *device) odata.Value { return odata.Value{List: d.Tags} }},
	odata.Property[*device]{Name: "aadDeviceId", Type: odata.Guid, Filterable: true, Sortable: true, Get: func(d *device) odata.Value { return optStr(d.AADID) }},
	odata.Property[*device]{Name: "agentVersion", Type: odata.String, Sortable: true, Get: func(d *device) odata.Value { return odata.Value{Str: d.Hidden} }},
)

func day(d int) time.Time { return time.Date(2021, 1, d, 12, 0, 0, 0, time.UTC) }

var devices = []*device{
	{Name: "mymachine1.contoso.com", Health: "Active", Risk: str("High"), Group: 140, Seen: day(25), Tags: []string{"Tag1", "Tag2"}, AADID: str("fd2e4d29-7072-4195-aaa5-1af139b78028")},
	{Name: "mymachine2.contoso.com", Health: "Inactive", Risk: str("Low"), Group: 0, Seen: day(2), Tags: nil},
	{Name: "server-01.fabrikam.com", Health: "ImpairedCommunication", Risk: nil, Group: 7, Seen: day(20), Tags: []string{"Prod"}},
	{Name: "O'Brien-pc", Health: "Active", Risk: str("Medium"), Group: 7, Seen: day(10), Tags: []string{"VIP", "tag1"}},
}

func names(ds []*device) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Name)
	}
	return out
}

func filter(t *testing.T, text string) ([]string, error) {
	t.Helper()
	e, err := odata.ParseFilter(text)
	if err != nil {
		return nil, err
	}
	pred, err := schema.Compile(e)
	if err != nil {
		return nil, err
	}
	var out []*device
	for _, d := range devices {
		if pred(d) {
			out = append(out, d)
		}
	}
	return names(out), nil
}

func TestFilterMatches(t *testing.T) {
	all := names(devices)
	tests := []struct {
		filter string
		want   []string
	}{
		// Microsoft's own examples (exposed-apis-odata-samples.md).
		{"riskScore eq 'High'", []string{"mymachine1.contoso.com"}},
		{"healthStatus ne 'Active'", []string{"mymachine2.contoso.com", "server-01.fabrikam.com"}},
		{"lastSeen gt 2018-08-01Z", all},
		{"startswith(computerDnsName,'mymachine')", []string{"mymachine1.contoso.com", "mymachine2.contoso.com"}},
		{"lastSeen ge 2021-01-20T00:00:00Z", []string{"mymachine1.contoso.com", "server-01.fabrikam.com"}},
		{"lastSeen lt 2021-01-02T20:33:57.7220239Z", []string{"mymachine2.contoso.com"}},
		// Case-insensitive names, values and operators.
		{"ComputerDnsName eq 'MYMACHINE1.CONTOSO.COM'", []string{"mymachine1.contoso.com"}},
		{"StartsWith(computerdnsname,'SERVER')", []string{"server-01.fabrikam.com"}},
		{"healthStatus EQ 'Active' AND rbacGroupId gt 100", []string{"mymachine1.contoso.com"}},
		// Nulls.
		{"riskScore eq null", []string{"server-01.fabrikam.com"}},
		{"riskScore ne null", []string{"mymachine1.contoso.com", "mymachine2.contoso.com", "O'Brien-pc"}},
		{"riskScore ne 'High'", []string{"mymachine2.contoso.com", "server-01.fabrikam.com", "O'Brien-pc"}},
		{"aadDeviceId eq null", []string{"mymachine2.contoso.com", "server-01.fabrikam.com", "O'Brien-pc"}},
		{"aadDeviceId eq FD2E4D29-7072-4195-aaa5-1af139b78028", []string{"mymachine1.contoso.com"}},
		{"aadDeviceId eq 'fd2e4d29-7072-4195-aaa5-1af139b78028'", []string{"mymachine1.contoso.com"}},
		// Logic, precedence, parentheses.
		{"rbacGroupId eq 7 or rbacGroupId eq 0 and healthStatus eq 'Active'", []string{"server-01.fabrikam.com", "O'Brien-pc"}},
		{"(rbacGroupId eq 7 or rbacGroupId eq 0) and healthStatus eq 'Active'", []string{"O'Brien-pc"}},
		{"not (healthStatus eq 'Active')", []string{"mymachine2.contoso.com", "server-01.fabrikam.com"}},
		{"not startswith(computerDnsName,'my')", []string{"server-01.fabrikam.com", "O'Brien-pc"}},
		// Lenient literals.
		{"rbacGroupId eq '140'", []string{"mymachine1.contoso.com"}},
		{"rbacGroupId ge 7.5", []string{"mymachine1.contoso.com"}},
		{"lastSeen gt '2021-01-21'", []string{"mymachine1.contoso.com"}},
		// Escaped quotes.
		{"computerDnsName eq 'O''Brien-pc'", []string{"O'Brien-pc"}},
		// Lambdas.
		{"machineTags/any(t: t eq 'tag1')", []string{"mymachine1.contoso.com", "O'Brien-pc"}},
		{"machineTags/any(t: startswith(t,'V'))", []string{"O'Brien-pc"}},
		{"machineTags/any()", []string{"mymachine1.contoso.com", "server-01.fabrikam.com", "O'Brien-pc"}},
		{"machineTags/all(t: t ne 'Prod')", []string{"mymachine1.contoso.com", "mymachine2.contoso.com", "O'Brien-pc"}},
		{"not machineTags/any()", []string{"mymachine2.contoso.com"}},
		{"true", all},
	}
	for _, tt := range tests {
		got, err := filter(t, tt.filter)
		if err != nil {
			t.Errorf("%s: %v", tt.filter, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.filter, diff)
		}
	}
}

func TestFilterErrors(t *testing.T) {
	tests := []struct{ filter, want string }{
		{"foo eq 'x'", "Could not find a property named 'foo' on type 'test.Device'."},
		{"agentVersion eq '1'", "The property 'agentVersion' cannot be used in the $filter query option."},
		{"riskScore eq", "Expression expected at position 12 in 'riskScore eq'."},
		{"riskScore eq 'High", "There is an unterminated string literal at position 13 in 'riskScore eq 'High'."},
		{"riskScore eq 'High' xor x", "Syntax error at position 20 in 'riskScore eq 'High' xor x'."},
		{"contains(computerDnsName,'x')", "Function 'contains' is not allowed. To allow it, set the 'AllowedFunctions' property on EnableQueryAttribute or QueryValidationSettings."},
		{"frobnicate(computerDnsName)", "Unknown function 'frobnicate'."},
		{"startswith(rbacGroupId,'1')", "No function signature for the function with name 'startswith' matches the specified arguments. The function signatures considered are: startswith(Edm.String Nullable=true, Edm.String Nullable=true)."},
		{"rbacGroupId eq 'abc'", "A binary operator with incompatible types was detected. Found operand types 'Edm.Int64' and 'Edm.String' for operator kind 'Equal'."},
		{"machineTags eq 'x'", "A binary operator with incompatible types was detected. Found operand types 'Collection(Edm.String)' and 'Edm.String' for operator kind 'Equal'."},
		{"not healthStatus eq 'Active'", "A unary operator with an incompatible type was detected. Found operand type 'Edm.String' for operator kind 'Not'."},
		{"computerDnsName", "The $filter expression must evaluate to a single boolean value."},
		{"lastSeen gt 2021-13-01T00:00:00Z", "Unrecognized 'Edm.DateTimeOffset' literal '2021-13-01T00:00:00Z' at '12' in 'lastSeen gt 2021-13-01T00:00:00Z'."},
		{"rbacGroupId in (1,2)", "The operator 'in' is not allowed. To allow it, set the 'AllowedLogicalOperators' property on EnableQueryAttribute or QueryValidationSettings."},
		{"a eq #", "Syntax error: character '#' is not valid at position 5 in 'a eq #'."},
		{"", "The $filter query option must not be empty."},
		{"(riskScore eq 'x'", "')' or operator expected at position 17 in '(riskScore eq 'x''."},
		{"machineTags/any(t: t)", "The expression of the any lambda must evaluate to a boolean value."},
		{"healthStatus/any(t: t eq 'x')", "The any query operator can only be applied to a collection; 'healthStatus' is of type 'Edm.String'."},
	}
	for _, tt := range tests {
		_, err := filter(t, tt.filter)
		if err == nil {
			t.Errorf("%q: no error", tt.filter)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.filter, err, tt.want)
		}
	}
}

func TestPrintRoundTrip(t *testing.T) {
	tests := map[string]string{
		"riskScore+eq+'High'":                      "", // '+' is not decoded by the parser: a syntax error, see below
		"riskScore eq 'O''Brien'":                  "(riskScore eq 'O''Brien')",
		"a eq 1 or b eq 2 and not c":               "((a eq 1) or ((b eq 2) and not c))",
		"machineTags/any(t:t eq 'x')":              "machineTags/any(t: (t eq 'x'))",
		"startswith(computerDnsName,'my')":         "startswith(computerDnsName,'my')",
		"lastSeen gt 2021-01-26T20:33:57.7220239Z": "(lastSeen gt 2021-01-26T20:33:57.7220239Z)",
		"x in ('a','b')":                           "(x in ('a','b'))",
	}
	for in, want := range tests {
		e, err := odata.ParseFilter(in)
		if want == "" {
			if err == nil {
				t.Errorf("%q parsed as %s, want an error", in, e)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got := e.String(); got != want {
			t.Errorf("%q printed as %q, want %q", in, got, want)
		}
		again, err := odata.ParseFilter(e.String())
		if err != nil || again.String() != e.String() {
			t.Errorf("%q: reprint %q gives %v, %v", in, e, again, err)
		}
	}
}

func TestParseQuery(t *testing.T) {
	lim := odata.QueryLimits{MaxTop: 10000, Options: []string{"$filter", "$top", "$skip", "$select", "$orderby", "$count"}}
	q, err := odata.ParseQuery("$filter=riskScore+eq+'High'&%24TOP=5&$skip=10&$select=id,%20computerDnsName&$orderby=lastSeen desc,id&$count=true&api-version=1", lim)
	if err != nil {
		t.Fatal(err)
	}
	got := struct {
		Filter          string
		Top, Skip       int
		HasTop, HasSkip bool
		Select          []string
		OrderBy         []odata.OrderItem
		Count           bool
	}{q.Filter.String(), q.Top, q.Skip, q.HasTop, q.HasSkip, q.Select, q.OrderBy, q.Count}
	want := got
	want.Filter, want.Top, want.Skip, want.HasTop, want.HasSkip = "(riskScore eq 'High')", 5, 10, true, true
	want.Select = []string{"id", "computerDnsName"}
	want.OrderBy = []odata.OrderItem{{Property: "lastSeen", Desc: true}, {Property: "id"}}
	want.Count = true
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	errs := map[string]string{
		"$top=10001":       "The limit of '10000' for Top query has been exceeded. The value from the incoming request is '10001'.",
		"$top=-1":          "Invalid value '-1' for $top query option found. The $top query option requires a non-negative integer value.",
		"$top=ten":         "Invalid value 'ten' for $top query option found. The $top query option requires a non-negative integer value.",
		"$skip=x":          "Invalid value 'x' for $skip query option found. The $skip query option requires a non-negative integer value.",
		"$count=yes":       "'yes' is not a valid count option.",
		"$expand=evidence": "The query parameter '$expand' is not supported.",
		"$top=1&$top=2":    "Query option '$top' was specified more than once, but it must be specified at most once.",
		"$orderby=a up":    "Syntax error at position 4 in 'a up'.",
		"$filter=a eq 'x":  "There is an unterminated string literal at position 5 in 'a eq 'x'.",
		"$select=id,,name": "Syntax error at position 8 in 'id,,name'.",
	}
	for raw, want := range errs {
		_, err := odata.ParseQuery(raw, lim)
		if err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %s", raw, err, want)
		}
	}
}

func TestSortAndSelect(t *testing.T) {
	sort, err := schema.Sorter([]odata.OrderItem{{Property: "rbacGroupId", Desc: true}, {Property: "COMPUTERDNSNAME"}})
	if err != nil {
		t.Fatal(err)
	}
	ds := append([]*device(nil), devices...)
	sort(ds)
	want := []string{"mymachine1.contoso.com", "O'Brien-pc", "server-01.fabrikam.com", "mymachine2.contoso.com"}
	if diff := cmp.Diff(want, names(ds)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Nulls sort first.
	sort, _ = schema.Sorter([]odata.OrderItem{{Property: "riskScore"}})
	sort(ds)
	if ds[0].Risk != nil {
		t.Errorf("first after sorting by riskScore = %v, want the null one", *ds[0].Risk)
	}
	if _, err := schema.Sorter([]odata.OrderItem{{Property: "machineTags"}}); err == nil || !strings.Contains(err.Error(), "cannot be used in the $orderby") {
		t.Errorf("sorting by a collection: %v", err)
	}
	sel, err := schema.ResolveSelect([]string{"COMPUTERDNSNAME", "rbacgroupid"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"computerDnsName", "rbacGroupId"}, sel); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := schema.ResolveSelect([]string{"nope"}); err == nil || err.Error() != "Could not find a property named 'nope' on type 'test.Device'." {
		t.Errorf("select unknown: %v", err)
	}
}

func TestParseDateTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2019-11-22T00:00:00Z":         time.Date(2019, 11, 22, 0, 0, 0, 0, time.UTC),
		"2021-01-26T20:33:57.7220239Z": time.Date(2021, 1, 26, 20, 33, 57, 722023900, time.UTC),
		"2018-08-01Z":                  time.Date(2018, 8, 1, 0, 0, 0, 0, time.UTC),
		"2018-08-01":                   time.Date(2018, 8, 1, 0, 0, 0, 0, time.UTC),
		"2021-01-26T22:33:57+02:00":    time.Date(2021, 1, 26, 20, 33, 57, 0, time.UTC),
	} {
		got, err := odata.ParseDateTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: got %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := odata.ParseDateTime("yesterday"); err == nil {
		t.Error("parsed yesterday")
	}
}
