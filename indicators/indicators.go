// Package indicators reads custom indicators from the files analysts have
// (CSV, JSON, STIX 2.1 bundles), checks them the way MDE will, and reports
// every problem with the line (or object) it came from, so that one bad
// line never costs the good ones and never passes silently.
//
// It knows nothing of the MDE API or of storage: it turns bytes into
// validated mdebridge.Indicator values.
package indicators

import (
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
)

// Types, actions and severities MDE accepts (mde-api.md §4.4).
var (
	Types      = []string{mdebridge.IndicatorFileSha1, mdebridge.IndicatorFileSha256, mdebridge.IndicatorFileMd5, mdebridge.IndicatorCertificate, mdebridge.IndicatorIPAddress, mdebridge.IndicatorDomainName, mdebridge.IndicatorURL}
	Actions    = []string{"Warn", "Block", "Audit", "Alert", "AlertAndBlock", "BlockAndRemediate", "Allowed"}
	Severities = []string{"Informational", "Low", "Medium", "High"}
)

// Formats are the file formats Parse reads.
var Formats = []string{"csv", "json", "stix"}

// Options fill what a file leaves out.
type Options struct {
	Defaults mdebridge.IndicatorDefaults
	// Now judges expiration times (default time.Now).
	Now time.Time
}

// Result is what a file held.
type Result struct {
	Indicators []mdebridge.Indicator        // valid and unique, in file order
	Problems   []mdebridge.IndicatorProblem // one per unusable entry
	Entries    int                          // entries read (lines, items, STIX indicator objects)
	Duplicates int                          // entries with the type and value of an earlier one
	Skipped    int                          // STIX objects that are not indicators
}

// Parse reads indicators in format (csv, json or stix). An error means the
// file as a whole could not be read (not CSV, not JSON, an unknown column);
// problems with single entries are in Result.Problems.
func Parse(r io.Reader, format string, opts Options) (*Result, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	var res *Result
	var err error
	switch strings.ToLower(format) {
	case "csv":
		res, err = parseCSV(r, opts)
	case "json":
		res, err = parseJSON(r, opts)
	case "stix":
		res, err = parseSTIX(r, opts)
	default:
		return nil, fmt.Errorf("format %q is not one of %s", format, strings.Join(Formats, ", "))
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// DetectFormat guesses a file's format from its name and first bytes.
func DetectFormat(name string, head []byte) string {
	lower := strings.ToLower(name)
	switch {
	case strings.HasSuffix(lower, ".csv"):
		return "csv"
	case strings.Contains(lower, "stix"):
		return "stix"
	}
	trimmed := strings.TrimSpace(string(head))
	if strings.HasPrefix(trimmed, "{") || strings.HasPrefix(trimmed, "[") {
		if strings.Contains(trimmed, `"type"`) && strings.Contains(trimmed, `"bundle"`) {
			return "stix"
		}
		return "json"
	}
	return "csv"
}

// collector dedupes and validates entries as a parser hands them over.
type collector struct {
	res  *Result
	opts Options
	seen map[string]bool
}

func newCollector(opts Options) *collector {
	return &collector{res: &Result{Problems: []mdebridge.IndicatorProblem{}}, opts: opts, seen: map[string]bool{}}
}

func (c *collector) problem(line int, value, format string, args ...any) {
	c.res.Problems = append(c.res.Problems, mdebridge.IndicatorProblem{Line: line, Value: value, Message: fmt.Sprintf(format, args...)})
}

// add validates one entry read at line and keeps it unless it repeats an
// earlier one.
func (c *collector) add(line int, in mdebridge.Indicator, generateAlertSet bool) {
	c.res.Entries++
	if err := Complete(&in, c.opts, generateAlertSet); err != nil {
		c.problem(line, in.IndicatorValue, "%v", err)
		return
	}
	key := Key(in.IndicatorType, in.IndicatorValue)
	if c.seen[key] {
		c.res.Duplicates++
		return
	}
	c.seen[key] = true
	c.res.Indicators = append(c.res.Indicators, in)
}

// Key identifies an indicator as MDE does: by type and value (values other
// than URLs compare case-insensitively).
func Key(typ, value string) string {
	if typ != mdebridge.IndicatorURL {
		value = strings.ToLower(value)
	}
	return typ + "\x00" + value
}

// DetectType names the indicator type of a value: a hash by its length, an
// IP address, a URL with a scheme, or a domain name.
func DetectType(v string) (string, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return "", fmt.Errorf("the value is empty")
	case isHex(v) && len(v) == 32:
		return mdebridge.IndicatorFileMd5, nil
	case isHex(v) && len(v) == 40:
		return mdebridge.IndicatorFileSha1, nil
	case isHex(v) && len(v) == 64:
		return mdebridge.IndicatorFileSha256, nil
	case strings.Contains(v, "://"):
		return mdebridge.IndicatorURL, nil
	}
	if _, err := netip.ParseAddr(v); err == nil {
		return mdebridge.IndicatorIPAddress, nil
	}
	if _, err := netip.ParsePrefix(v); err == nil {
		return "", fmt.Errorf("%q is an address range: MDE does not take CIDR notation, list the addresses", v)
	}
	if isHex(v) {
		return "", fmt.Errorf("%q looks like a hash but has %d hex digits (MD5 has 32, SHA-1 40, SHA-256 64)", v, len(v))
	}
	if validDomain(strings.TrimSuffix(v, ".")) {
		return mdebridge.IndicatorDomainName, nil
	}
	return "", fmt.Errorf("%q is not a hash, an IP address, a URL or a domain name", v)
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func validDomain(d string) bool {
	if len(d) == 0 || len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// Complete fills an indicator's defaults (type from its value, action,
// severity, expiration, a title from the value, a description from the
// title, an alert for an Audit action) and checks it as MDE would,
// normalising the value. generateAlertSet says whether the entry set
// generateAlert itself.
func Complete(in *mdebridge.Indicator, opts Options, generateAlertSet bool) error {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	in.IndicatorValue = strings.TrimSpace(in.IndicatorValue)
	if in.IndicatorValue == "" {
		return fmt.Errorf("no indicator value")
	}
	if in.IndicatorType == "" {
		t, err := DetectType(in.IndicatorValue)
		if err != nil {
			return err
		}
		in.IndicatorType = t
	} else if t := canonical(Types, in.IndicatorType); t != "" {
		in.IndicatorType = t
	} else {
		return fmt.Errorf("indicator type %q is not one of %s", in.IndicatorType, strings.Join(Types, ", "))
	}
	if err := checkValue(in); err != nil {
		return err
	}
	if in.Action == "" {
		in.Action = opts.Defaults.Action
	}
	if in.Action == "" {
		return fmt.Errorf("no action (and no default action configured)")
	}
	a := canonical(Actions, in.Action)
	if a == "" {
		return fmt.Errorf("action %q is not one of %s", in.Action, strings.Join(Actions, ", "))
	}
	in.Action = a
	network := in.IndicatorType == mdebridge.IndicatorIPAddress || in.IndicatorType == mdebridge.IndicatorDomainName || in.IndicatorType == mdebridge.IndicatorURL
	if network && a == "BlockAndRemediate" {
		return fmt.Errorf("action BlockAndRemediate applies to files and certificates, not to %s indicators", in.IndicatorType)
	}
	if a == "Audit" {
		if !generateAlertSet {
			in.GenerateAlert = true
		} else if !in.GenerateAlert {
			return fmt.Errorf("the Audit action needs generateAlert true")
		}
	}
	if in.Severity == "" {
		in.Severity = opts.Defaults.Severity
	}
	if in.Severity != "" {
		s := canonical(Severities, in.Severity)
		if s == "" {
			return fmt.Errorf("severity %q is not one of %s", in.Severity, strings.Join(Severities, ", "))
		}
		in.Severity = s
	}
	if in.ExpirationTime.IsZero() && opts.Defaults.Expiration > 0 {
		in.ExpirationTime = opts.Now.Add(opts.Defaults.Expiration).UTC().Truncate(time.Second)
	}
	if !in.ExpirationTime.IsZero() && !in.ExpirationTime.After(opts.Now) {
		return fmt.Errorf("it expired on %s", in.ExpirationTime.UTC().Format(time.RFC3339))
	}
	in.Title = strings.TrimSpace(in.Title)
	if in.Title == "" {
		in.Title = in.IndicatorType + " " + in.IndicatorValue
	}
	if strings.TrimSpace(in.Description) == "" {
		in.Description = in.Title
	}
	return nil
}

// canonical returns the entry of list equal to s ignoring case, or "".
func canonical(list []string, s string) string {
	s = strings.TrimSpace(s)
	i := slices.IndexFunc(list, func(v string) bool { return strings.EqualFold(v, s) })
	if i < 0 {
		return ""
	}
	return list[i]
}

// checkValue validates and normalises the value for its type.
func checkValue(in *mdebridge.Indicator) error {
	v := in.IndicatorValue
	hash := func(name string, n int) error {
		if !isHex(v) || len(v) != n {
			return fmt.Errorf("%q is not a valid %s (%d hex digits)", v, name, n)
		}
		in.IndicatorValue = strings.ToLower(v)
		return nil
	}
	switch in.IndicatorType {
	case mdebridge.IndicatorFileSha1:
		return hash("SHA-1", 40)
	case mdebridge.IndicatorCertificate:
		return hash("certificate thumbprint", 40)
	case mdebridge.IndicatorFileSha256:
		return hash("SHA-256", 64)
	case mdebridge.IndicatorFileMd5:
		return hash("MD5", 32)
	case mdebridge.IndicatorIPAddress:
		ip, err := netip.ParseAddr(v)
		if err != nil {
			if _, perr := netip.ParsePrefix(v); perr == nil {
				return fmt.Errorf("%q is an address range: MDE does not take CIDR notation", v)
			}
			return fmt.Errorf("%q is not a valid IP address", v)
		}
		if !ip.IsGlobalUnicast() || ip.IsPrivate() {
			return fmt.Errorf("%s is not an external IP address (MDE takes only those)", v)
		}
		in.IndicatorValue = ip.String()
	case mdebridge.IndicatorDomainName:
		d := strings.TrimSuffix(v, ".")
		if !validDomain(d) {
			return fmt.Errorf("%q is not a valid domain name", v)
		}
		in.IndicatorValue = strings.ToLower(d)
	case mdebridge.IndicatorURL:
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%q is not a valid http or https URL", v)
		}
		if h := u.Hostname(); !validDomain(h) {
			if _, err := netip.ParseAddr(h); err != nil {
				return fmt.Errorf("%q is not a valid URL: bad host %q", v, h)
			}
		}
	}
	return nil
}

// Changed reports whether submitting in would change what the store holds
// as old (what a dry run calls "changed").
func Changed(old, in mdebridge.Indicator) bool {
	return old.Action != in.Action || old.Severity != in.Severity || old.Title != in.Title ||
		old.Description != in.Description || !old.ExpirationTime.Equal(in.ExpirationTime) ||
		old.GenerateAlert != in.GenerateAlert || !slices.Equal(old.RBACGroupNames, in.RBACGroupNames) ||
		old.RecommendedActions != in.RecommendedActions
}
