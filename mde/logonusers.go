package mde

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
)

// Logon users two ways: one advanced hunting query for every machine
// (DeviceLogonEvents summarised per machine and account), split by device
// id prefix when the answer would pass the row cap; or one call per
// machine (GET /api/machines/{id}/logonusers), the way other integrations
// do it, for tenants where hunting is not permitted.

// logonUsersQuery summarises 30 days of successful logons into one row per
// machine and account. The partition predicate comes first, so that the
// service (and the emulator) can skip the other devices early.
func logonUsersQuery(p partition) string {
	var b strings.Builder
	b.WriteString("DeviceLogonEvents\n")
	if w := p.predicate(); w != "" {
		b.WriteString("| where " + w + "\n")
	}
	b.WriteString(`| where Timestamp > ago(30d) and ActionType == "LogonSuccess" and isnotempty(AccountName)
| summarize arg_max(Timestamp, AccountSid, IsLocalAdmin), FirstSeen = min(Timestamp), LogonTypes = make_set(LogonType) by DeviceId, AccountDomain, AccountName
| project DeviceId, AccountDomain, AccountName, AccountSid, FirstSeen, LastSeen = Timestamp, LogonTypes, IsLocalAdmin`)
	return b.String()
}

const hexDigitsLower = "0123456789abcdef"

// partition is a share of the devices by the first characters of their
// id: those whose id starts with one of prefixes (all of one length), and
// with catchAll also those whose id does not start with a hex digit, so
// that the partitions together always cover every device.
type partition struct {
	prefixes []string
	catchAll bool
	all      bool // every device: no predicate
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func (p partition) predicate() string {
	if p.all {
		return ""
	}
	var parts []string
	if len(p.prefixes) > 0 {
		parts = append(parts, fmt.Sprintf("substring(DeviceId, 0, %d) in~ (%s)", len(p.prefixes[0]), quoteList(p.prefixes)))
	}
	if p.catchAll {
		hex := make([]string, 16)
		for i := range hex {
			hex[i] = hexDigitsLower[i : i+1]
		}
		parts = append(parts, fmt.Sprintf("not(substring(DeviceId, 0, 1) in~ (%s))", quoteList(hex)))
	}
	return strings.Join(parts, " or ")
}

func (p partition) String() string {
	switch {
	case p.all:
		return "all devices"
	case len(p.prefixes) == 0:
		return "devices whose id does not start with a hex digit"
	}
	s := "device ids starting " + strings.Join(p.prefixes, ",")
	if p.catchAll {
		s += " (and non-hex ids)"
	}
	return s
}

// hexPrefixes lists every hex string of length n, in order.
func hexPrefixes(n int) []string {
	out := []string{""}
	for range n {
		next := make([]string, 0, len(out)*16)
		for _, p := range out {
			for i := range 16 {
				next = append(next, p+hexDigitsLower[i:i+1])
			}
		}
		out = next
	}
	return out
}

// planPartitions shares the devices so that each query should return about
// target rows at most, given expected rows in all: device ids are uniform
// hex, so each prefix of length n holds expected/16ⁿ of them. Prefixes are
// made short enough that a query's share can be close to target.
func planPartitions(expected, target int) []partition {
	if expected <= target {
		return []partition{{all: true}}
	}
	n, per := 1, float64(expected)/16
	for per > float64(target)/4 && n < 4 {
		n++
		per /= 16
	}
	prefixes := hexPrefixes(n)
	size := max(1, int(float64(target)/per)) // prefixes per query
	count := (len(prefixes) + size - 1) / size
	parts := make([]partition, count)
	for i, p := range prefixes {
		parts[i*count/len(prefixes)].prefixes = append(parts[i*count/len(prefixes)].prefixes, p)
	}
	parts[count-1].catchAll = true
	return parts
}

// split halves a partition whose answer reached the row cap; a single
// prefix is first refined to its sixteen children. ok is false when it
// cannot be split further.
func (p partition) split() ([]partition, bool) {
	switch {
	case p.all:
		return planPartitions(2, 1), true // every hex digit and the non-hex rest
	case len(p.prefixes) == 0:
		return nil, false
	case len(p.prefixes) == 1:
		if len(p.prefixes[0]) >= 40 {
			return nil, false
		}
		children := make([]string, 16)
		for i := range children {
			children[i] = p.prefixes[0] + hexDigitsLower[i:i+1]
		}
		p.prefixes = children
	}
	half := len(p.prefixes) / 2
	a := partition{prefixes: p.prefixes[:half]}
	b := partition{prefixes: p.prefixes[half:], catchAll: p.catchAll}
	return []partition{a, b}, true
}

// HuntLogonUsers hands every machine's logon users of the last 30 days to
// page, one query's worth at a time. The queries are planned from expected
// so that each stays well under the row cap; an answer that reaches the cap
// anyway (it may be cut off) is dropped and its share of the devices asked
// again in halves.
func (c *Client) HuntLogonUsers(ctx context.Context, expected int, page func([]mdebridge.LogonUser) error) error {
	limit := c.opts.HuntingRowCap
	todo := planPartitions(expected, limit*6/10)
	for len(todo) > 0 {
		p := todo[0]
		todo = todo[1:]
		_, rows, err := c.hunt(ctx, logonUsersQuery(p))
		if err != nil {
			return fmt.Errorf("logon users of %s: %w", p, err)
		}
		if len(rows) >= limit {
			halves, ok := p.split()
			if !ok {
				return fmt.Errorf("logon users of %s: %d rows, the most advanced hunting returns, and the devices cannot be split further", p, len(rows))
			}
			c.log.Info("advanced hunting answer reached the row cap; asking again in halves", "partition", p.String(), "rows", len(rows))
			todo = append(halves, todo...)
			continue
		}
		users := make([]mdebridge.LogonUser, 0, len(rows))
		for i, raw := range rows {
			u, err := decodeHuntedLogonUser(raw)
			if err != nil {
				return &MalformedPageError{API: HuntingAPI, Page: 1, Err: fmt.Errorf("logon users of %s, row %d: %w", p, i+1, err)}
			}
			users = append(users, u)
		}
		if err := page(users); err != nil {
			return err
		}
	}
	return nil
}

// huntedLogonUser is a row of logonUsersQuery.
type huntedLogonUser struct {
	DeviceID      string          `json:"DeviceId"`
	AccountDomain string          `json:"AccountDomain"`
	AccountName   string          `json:"AccountName"`
	AccountSID    *string         `json:"AccountSid"`
	FirstSeen     flexTime        `json:"FirstSeen"`
	LastSeen      flexTime        `json:"LastSeen"`
	LogonTypes    json.RawMessage `json:"LogonTypes"`
	IsLocalAdmin  flexBool        `json:"IsLocalAdmin"`
}

func decodeHuntedLogonUser(raw json.RawMessage) (mdebridge.LogonUser, error) {
	var h huntedLogonUser
	if err := json.Unmarshal(raw, &h); err != nil {
		return mdebridge.LogonUser{}, err
	}
	if h.DeviceID == "" || h.AccountName == "" {
		return mdebridge.LogonUser{}, fmt.Errorf("a row without DeviceId or AccountName: %s", raw)
	}
	types, err := parseLogonTypes(h.LogonTypes)
	if err != nil {
		return mdebridge.LogonUser{}, fmt.Errorf("LogonTypes: %w", err)
	}
	u := mdebridge.LogonUser{MachineID: strings.ToLower(h.DeviceID), AccountName: h.AccountName, AccountDomain: h.AccountDomain,
		FirstSeen: time.Time(h.FirstSeen), LastSeen: time.Time(h.LastSeen), LogonTypes: types,
		IsLocalAdmin: h.IsLocalAdmin.ptr(), Source: mdebridge.LogonUserFromHunting, Raw: raw}
	if h.AccountSID != nil {
		u.AccountSID = *h.AccountSID
	}
	u.IsOnlyNetworkUser = u.OnlyNetwork()
	return u, nil
}

// parseLogonTypes reads logon types as make_set gives them (a JSON array,
// or that array serialised as a string) or as logonusers writes them
// ("Interactive, Network").
func parseLogonTypes(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var list []string
	if raw[0] == '[' {
		err := json.Unmarshal(raw, &list)
		return list, err
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "[") {
		if err := json.Unmarshal([]byte(t), &list); err == nil {
			return list, nil
		}
	}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			list = append(list, p)
		}
	}
	return list, nil
}

// flexBool decodes a boolean that may be null, a string or a number.
type flexBool struct {
	v, ok bool
}

func (b *flexBool) UnmarshalJSON(data []byte) error {
	switch s := strings.Trim(string(bytes.TrimSpace(data)), `"`); strings.ToLower(s) {
	case "null", "":
		*b = flexBool{}
	case "true", "1":
		*b = flexBool{true, true}
	case "false", "0":
		*b = flexBool{false, true}
	default:
		return fmt.Errorf("not a boolean: %s", data)
	}
	return nil
}

func (b flexBool) ptr() *bool {
	if !b.ok {
		return nil
	}
	v := b.v
	return &v
}

// MachineLogonsAPI names the per-machine logon users endpoint.
const MachineLogonsAPI = "GET /api/machines/{id}/logonusers"

// wireLogonUser is an object of GET /api/machines/{id}/logonusers.
type wireLogonUser struct {
	AccountName       string          `json:"accountName"`
	AccountDomain     string          `json:"accountDomain"`
	AccountSID        *string         `json:"accountSid"`
	FirstSeen         flexTime        `json:"firstSeen"`
	LastSeen          flexTime        `json:"lastSeen"`
	LogonTypes        json.RawMessage `json:"logonTypes"`
	IsDomainAdmin     flexBool        `json:"isDomainAdmin"`
	IsOnlyNetworkUser flexBool        `json:"isOnlyNetworkUser"`
}

// MachineLogonUsers returns the logon users of one machine (one call; a
// machine the service does not know is an error wrapping ErrNotFound).
func (c *Client) MachineLogonUsers(ctx context.Context, machineID string) ([]mdebridge.LogonUser, error) {
	var users []mdebridge.LogonUser
	err := c.list(ctx, listOptions{api: MachineLogonsAPI, path: "/api/machines/" + url.PathEscape(machineID) + "/logonusers", top: MaxMachinesPage},
		func(items []json.RawMessage) error {
			for i, raw := range items {
				var w wireLogonUser
				if err := json.Unmarshal(raw, &w); err != nil {
					return &MalformedPageError{API: MachineLogonsAPI, Page: 1, Err: fmt.Errorf("user %d: %w", i+1, err)}
				}
				types, err := parseLogonTypes(w.LogonTypes)
				if err != nil || w.AccountName == "" {
					return &MalformedPageError{API: MachineLogonsAPI, Page: 1, Err: fmt.Errorf("user %d: no accountName or bad logonTypes: %s", i+1, raw)}
				}
				u := mdebridge.LogonUser{MachineID: strings.ToLower(machineID), AccountName: w.AccountName, AccountDomain: w.AccountDomain,
					FirstSeen: time.Time(w.FirstSeen), LastSeen: time.Time(w.LastSeen), LogonTypes: types,
					IsDomainAdmin: w.IsDomainAdmin.ptr(), IsOnlyNetworkUser: w.IsOnlyNetworkUser.ptr(),
					Source: mdebridge.LogonUserFromAPI, Raw: raw}
				if w.AccountSID != nil {
					u.AccountSID = *w.AccountSID
				}
				users = append(users, u)
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	return users, nil
}

var _ mdebridge.LogonUserSource = (*Client)(nil)
var _ mdebridge.HuntingQuerier = (*Client)(nil)
