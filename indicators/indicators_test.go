package indicators_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/indicators"
)

var now = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

func opts() indicators.Options {
	return indicators.Options{Now: now, Defaults: mdebridge.IndicatorDefaults{Action: "Audit", Severity: "Medium", Expiration: 30 * 24 * time.Hour}}
}

func parse(t *testing.T, format, input string) *indicators.Result {
	t.Helper()
	res, err := indicators.Parse(strings.NewReader(input), format, opts())
	if err != nil {
		t.Fatalf("parse %s: %v", format, err)
	}
	return res
}

func problemLines(res *indicators.Result) []int {
	var out []int
	for _, p := range res.Problems {
		out = append(out, p.Line)
	}
	return out
}

func TestCSV(t *testing.T) {
	input := "\ufeffIndicatorValue,IndicatorType,Action,Title,Severity,ExpirationTime,RbacGroups,GenerateAlert\n" +
		"220E7D15B011D7FAC48F2BD61114DB1022197F7F,FileSha1,Block,known bad,High,2027-01-01,g1;g2,\n" + // 2: ok
		"evil.example.,,,,,,,\n" + // 3: domain, defaults
		"12.13.14.15,IpAddress,BlockAndRemediate,,,,,\n" + // 4: action not for IPs
		"10.0.0.1,,Block,,,,,\n" + // 5: private
		"1.2.3.0/24,,Block,,,,,\n" + // 6: CIDR
		"abc123,,Block,,,,,\n" + // 7: short hash
		"http://evil.example/x?y=1,,Warn,,,,,\n" + // 8: url ok
		"\n" + // blank
		"220e7d15b011d7fac48f2bd61114db1022197f7f,FileSha1,Allowed,dup,,,,\n" + // 10: duplicate
		"bad.example,DomainName,Audit,,,,,false\n" + // 11: audit without alert
		"old.example,DomainName,Block,,,2020-01-01,,\n" + // 12: expired
		"x.example,Email,Block,,,,,\n" + // 13: unknown type
		"y.example,,Block,,Critical,,,\n" // 14: bad severity
	res := parse(t, "csv", input)
	if diff := cmp.Diff([]int{4, 5, 6, 7, 11, 12, 13, 14}, problemLines(res)); diff != "" {
		t.Errorf("problem lines (-want +got):\n%s\n%+v", diff, res.Problems)
	}
	if len(res.Indicators) != 3 || res.Duplicates != 1 || res.Entries != 12 {
		t.Fatalf("%d indicators, %d duplicates, %d entries", len(res.Indicators), res.Duplicates, res.Entries)
	}
	h := res.Indicators[0]
	if h.IndicatorValue != "220e7d15b011d7fac48f2bd61114db1022197f7f" || h.Action != "Block" || h.Severity != "High" ||
		!h.ExpirationTime.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) || len(h.RBACGroupNames) != 2 || h.Description != "known bad" {
		t.Errorf("first: %+v", h)
	}
	d := res.Indicators[1]
	if d.IndicatorValue != "evil.example" || d.IndicatorType != "DomainName" || d.Action != "Audit" || !d.GenerateAlert ||
		d.Severity != "Medium" || !d.ExpirationTime.Equal(now.Add(30*24*time.Hour)) || d.Title != "DomainName evil.example" {
		t.Errorf("defaults: %+v", d)
	}
	for _, p := range res.Problems {
		if p.Message == "" || (p.Line != 7 && p.Value == "") {
			t.Errorf("problem without a reason or value: %+v", p)
		}
	}
}

func TestCSVWholeFileErrors(t *testing.T) {
	for _, input := range []string{"", "value,sevrity\nx,y\n", "type,action\nFileSha1,Block\n"} {
		if _, err := indicators.Parse(strings.NewReader(input), "csv", opts()); err == nil {
			t.Errorf("%q: no error", input)
		}
	}
	res := parse(t, "csv", "value,title\n\"unterminated,x\n1.1.1.1,ok\n")
	if len(res.Problems) == 0 {
		t.Error("a broken quote was not reported")
	}
}

func TestJSONForms(t *testing.T) {
	item := `{"indicatorValue":"%s","indicatorType":"%s","action":"Block","title":"t"}`
	arr := "[\n" + fmt.Sprintf(item, "1.1.1.1", "IpAddress") + ",\n" + fmt.Sprintf(item, "nope", "FileSha1") + "\n]"
	res := parse(t, "json", arr)
	if len(res.Indicators) != 1 || len(res.Problems) != 1 || res.Problems[0].Line != 3 {
		t.Errorf("array: %+v %+v", res.Indicators, res.Problems)
	}
	wrapped := `{"Indicators": [` + "\n" + fmt.Sprintf(item, "a.example", "DomainName") + `]}`
	if res := parse(t, "json", wrapped); len(res.Indicators) != 1 || res.Indicators[0].IndicatorValue != "a.example" {
		t.Errorf("import request body: %+v", res)
	}
	// A list response, as `indicators list -o json` wraps it or MDE sends it.
	list := `{"@odata.context":"x","value":[{"id":"7","indicatorValue":"bec1b52d350d721c7e22a6d4bb0a92909893a3ae","indicatorType":"FileSha1",
		"action":"BlockAndRemediate","createdBy":"a","severity":"Informational","category":1,"title":"test","description":"test",
		"creationTimeDateTimeUtc":"2023-04-25T17:37:28.8510566Z","rbacGroupNames":[],"generateAlert":false}]}`
	if res := parse(t, "json", list); len(res.Indicators) != 1 || res.Indicators[0].Action != "BlockAndRemediate" {
		t.Errorf("list response: %+v %+v", res.Indicators, res.Problems)
	}
	lines := fmt.Sprintf(item, "b.example", "DomainName") + "\n" + `{"value":"c.example","bogus":1}` + "\n" + `{"value":"d.example"}`
	res = parse(t, "json", lines)
	if len(res.Indicators) != 2 || len(res.Problems) != 1 || res.Problems[0].Line != 2 || !strings.Contains(res.Problems[0].Message, "bogus") {
		t.Errorf("JSON lines: %+v %+v", res.Indicators, res.Problems)
	}
	for _, bad := range []string{"", "[1,", "\"x\""} {
		if _, err := indicators.Parse(strings.NewReader(bad), "json", opts()); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

const bundle = `{
  "type": "bundle",
  "id": "bundle--1",
  "objects": [
    {"type": "identity", "id": "identity--1", "name": "feed"},
    {"type": "indicator", "id": "indicator--a", "name": "Emotet hashes", "pattern_type": "stix", "confidence": 90,
     "pattern": "[file:hashes.'SHA-256' = '` + "aa00000000000000000000000000000000000000000000000000000000000001" + `' OR file:hashes.MD5 = '0123456789abcdef0123456789abcdef']"},
    {"type": "indicator", "id": "indicator--b", "name": "C2", "pattern_type": "stix", "valid_until": "2027-06-01T00:00:00Z",
     "pattern": "[ipv4-addr:value IN ('198.51.100.7', '203.0.113.9/32')] OR [domain-name:value = 'c2.evil.example']"},
    {"type": "indicator", "id": "indicator--c", "pattern_type": "stix", "pattern": "[url:value = 'https://evil.example/dl?x=it\\'s']"},
    {"type": "indicator", "id": "indicator--d", "pattern_type": "stix", "pattern": "[file:name = 'evil.exe' AND file:size > 10]"},
    {"type": "indicator", "id": "indicator--e", "pattern_type": "snort", "pattern": "alert tcp any any"},
    {"type": "indicator", "id": "indicator--f", "pattern_type": "stix", "pattern": "[ipv4-addr:value = '10.0.0.0/8']"},
    {"type": "indicator", "id": "indicator--g", "pattern_type": "stix", "revoked": true, "pattern": "[domain-name:value = 'old.example']"},
    {"type": "indicator", "id": "indicator--h", "pattern_type": "stix", "pattern": "[x509-certificate:hashes.'SHA-1' = '` + "87662bc3d60e4200ceaf7aae249d1c343f4b83c9" + `'] WITHIN 300 SECONDS"},
    {"type": "relationship", "id": "relationship--1"}
  ]
}`

func TestSTIXBundle(t *testing.T) {
	res := parse(t, "stix", bundle)
	var got []string
	for _, in := range res.Indicators {
		got = append(got, in.IndicatorType+" "+in.IndicatorValue)
	}
	want := []string{"FileSha256 aa00000000000000000000000000000000000000000000000000000000000001", "FileMd5 0123456789abcdef0123456789abcdef",
		"IpAddress 198.51.100.7", "IpAddress 203.0.113.9", "DomainName c2.evil.example", "Url https://evil.example/dl?x=it's"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("indicators (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{5, 6, 7, 8, 9}, problemLines(res)); diff != "" {
		t.Errorf("problem objects (-want +got):\n%s\n%+v", diff, res.Problems)
	}
	if res.Indicators[0].Severity != "High" || res.Indicators[0].Title != "Emotet hashes" || res.Indicators[0].ExternalID != "indicator--a" {
		t.Errorf("STIX fields: %+v", res.Indicators[0])
	}
	if !res.Indicators[2].ExpirationTime.Equal(time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("valid_until: %v", res.Indicators[2].ExpirationTime)
	}
	if res.Skipped != 2 {
		t.Errorf("skipped %d non-indicator objects", res.Skipped)
	}
	// A bundle given as JSON is recognised.
	if res2 := parse(t, "json", bundle); len(res2.Indicators) != len(res.Indicators) {
		t.Errorf("bundle through the JSON reader: %d", len(res2.Indicators))
	}
}

func TestParsePatternErrors(t *testing.T) {
	for _, p := range []string{"", "[", "[file:hashes.MD5 = ]", "[file:hashes.MD5 = 'x'", "[process:pid = '1']", "[a:b != 'x']",
		"[url:value = 'x'] AND [url:value = 'y']", "[url:value = 'unterminated]", "file:hashes.MD5 = 'x'", "[url:value NOT = 'x']"} {
		if v, err := indicators.ParsePattern(p); err == nil {
			t.Errorf("%q: parsed to %v", p, v)
		}
	}
}

func TestDetectType(t *testing.T) {
	for v, want := range map[string]string{
		strings.Repeat("a", 32): "FileMd5", strings.Repeat("B", 40): "FileSha1", strings.Repeat("c", 64): "FileSha256",
		"1.2.3.4": "IpAddress", "2001:db8::1": "IpAddress", "https://x.example/a": "Url", "x.example": "DomainName",
	} {
		if got, err := indicators.DetectType(v); err != nil || got != want {
			t.Errorf("%s: %s %v, want %s", v, got, err, want)
		}
	}
	for _, v := range []string{"", "abc", "1.2.3.0/24", "not a thing", "localhost"} {
		if got, err := indicators.DetectType(v); err == nil {
			t.Errorf("%q detected as %s", v, got)
		}
	}
}

func TestDetectFormat(t *testing.T) {
	for _, tt := range []struct{ name, head, want string }{
		{"iocs.csv", "value\n", "csv"}, {"feed.json", `{"type":"bundle"}`, "stix"}, {"x.json", `[{"value":1}]`, "json"},
		{"feed-stix.json", `{}`, "stix"}, {"list.txt", "a,b", "csv"},
	} {
		if got := indicators.DetectFormat(tt.name, []byte(tt.head)); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

func BenchmarkParseCSV10k(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString("indicatorValue,indicatorType,action,title\n")
	for i := range 10000 {
		fmt.Fprintf(&buf, "%040x,FileSha1,Block,ioc %d\n", i+1, i)
	}
	data := buf.Bytes()
	for b.Loop() {
		res, err := indicators.Parse(bytes.NewReader(data), "csv", opts())
		if err != nil || len(res.Indicators) != 10000 {
			b.Fatal(err)
		}
	}
}

func FuzzParseCSV(f *testing.F) {
	f.Add("value,type,action\n1.1.1.1,IpAddress,Block\n")
	f.Add("value\n\"a\"\"b\",x\n")
	f.Fuzz(func(t *testing.T, s string) {
		res, err := indicators.Parse(strings.NewReader(s), "csv", opts())
		if err == nil {
			checkResult(t, res)
		}
	})
}

func FuzzParseJSON(f *testing.F) {
	f.Add(`[{"indicatorValue":"1.1.1.1","action":"Block"}]`)
	f.Add(`{"Indicators":[{"value":"a.example"}]}`)
	f.Add(bundle)
	f.Fuzz(func(t *testing.T, s string) {
		res, err := indicators.Parse(strings.NewReader(s), "json", opts())
		if err == nil {
			checkResult(t, res)
		}
	})
}

func FuzzParsePattern(f *testing.F) {
	f.Add("[file:hashes.'SHA-256' = 'aa' OR ipv4-addr:value IN ('1.1.1.1','2.2.2.2')]")
	f.Add("([url:value = 'x\\'y'] OR [domain-name:value = 'z']) WITHIN 5 SECONDS")
	f.Fuzz(func(t *testing.T, s string) {
		vals, err := indicators.ParsePattern(s)
		if err == nil && len(vals) == 0 {
			t.Errorf("%q parsed to nothing without an error", s)
		}
	})
}

// checkResult holds a parse result to its invariants: every indicator
// valid and unique, every entry accounted for.
func checkResult(t *testing.T, res *indicators.Result) {
	t.Helper()
	seen := map[string]bool{}
	for _, in := range res.Indicators {
		if err := indicators.Complete(&in, opts(), true); err != nil {
			t.Errorf("invalid indicator kept: %+v: %v", in, err)
		}
		k := indicators.Key(in.IndicatorType, in.IndicatorValue)
		if seen[k] {
			t.Errorf("duplicate kept: %s", k)
		}
		seen[k] = true
	}
	if len(res.Indicators)+len(res.Problems)+res.Duplicates != res.Entries {
		t.Errorf("%d kept + %d problems + %d duplicates != %d entries", len(res.Indicators), len(res.Problems), res.Duplicates, res.Entries)
	}
}
