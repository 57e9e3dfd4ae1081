package mde

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/mdebridge/mdebridge"
)

// MaxMachinesPage is the largest $top that GET /api/machines accepts.
const MaxMachinesPage = 10000

// wireMachine decodes a machine leniently: its shallower fields shadow the
// embedded domain fields of the same JSON name.
type wireMachine struct {
	mdebridge.Machine
	FirstSeen   flexTime `json:"firstSeen"`
	LastSeen    flexTime `json:"lastSeen"`
	OSBuild     flexInt  `json:"osBuild"`
	RBACGroupID flexInt  `json:"rbacGroupId"`
}

// DecodeMachine decodes one machine object and keeps its raw JSON.
func DecodeMachine(raw json.RawMessage) (mdebridge.Machine, error) {
	var w wireMachine
	if err := json.Unmarshal(raw, &w); err != nil {
		return mdebridge.Machine{}, err
	}
	m := w.Machine
	m.FirstSeen = time.Time(w.FirstSeen)
	m.LastSeen = time.Time(w.LastSeen)
	m.OSBuild = int64(w.OSBuild)
	m.RBACGroupID = int64(w.RBACGroupID)
	m.Raw = raw
	if m.ID == "" {
		return m, fmt.Errorf("machine without an id")
	}
	return m, nil
}

func decodeMachines(items []json.RawMessage) ([]mdebridge.Machine, error) {
	out := make([]mdebridge.Machine, 0, len(items))
	for i, raw := range items {
		m, err := DecodeMachine(raw)
		if err != nil {
			return nil, fmt.Errorf("machine %d of the page: %w", i+1, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// ListMachines hands every machine of the tenant to page, 10,000 at a time
// (the documented maximum), so 100,000 machines cost 11 calls.
func (c *Client) ListMachines(ctx context.Context, page func([]mdebridge.Machine) error) error {
	return c.ListMachinesFiltered(ctx, "", page)
}

// ListMachinesFiltered is ListMachines with an OData $filter.
func (c *Client) ListMachinesFiltered(ctx context.Context, filter string, page func([]mdebridge.Machine) error) error {
	q := url.Values{}
	if filter != "" {
		q.Set("$filter", filter)
	}
	n := 0
	return c.list(ctx, listOptions{api: "GET /api/machines", path: "/api/machines", query: q, top: MaxMachinesPage, notFoundIsEmpty: filter == ""},
		func(items []json.RawMessage) error {
			n++
			ms, err := decodeMachines(items)
			if err != nil {
				return &MalformedPageError{API: "GET /api/machines", Page: n, Err: err}
			}
			return page(ms)
		})
}

// GetMachine returns one machine by device id or computer name.
func (c *Client) GetMachine(ctx context.Context, idOrName string) (*mdebridge.Machine, error) {
	var m mdebridge.Machine
	_, err := c.do(ctx, request{api: "GET /api/machines/{id}", method: "GET", url: c.url("/api/machines/"+url.PathEscape(idOrName), nil)},
		func(body io.Reader) error {
			raw, err := io.ReadAll(body)
			if err != nil {
				return err
			}
			m, err = DecodeMachine(raw)
			return err
		})
	if err != nil {
		return nil, err
	}
	m.Raw = stripODataContext(m.Raw)
	return &m, nil
}

// Probe makes the cheapest authenticated call there is (one machine), to
// test reachability and permission.
func (c *Client) Probe(ctx context.Context) error {
	q := url.Values{"$top": {"1"}, "$select": {"id"}}
	_, err := c.do(ctx, request{api: "GET /api/machines", method: "GET", url: c.url("/api/machines", q), accept: []int{404}}, nil)
	return err
}

// stripODataContext drops the "@odata.context" member of a single entity, so
// that a machine fetched alone stores like one fetched in a list.
func stripODataContext(raw json.RawMessage) json.RawMessage {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return raw
	}
	if _, ok := obj["@odata.context"]; !ok {
		return raw
	}
	delete(obj, "@odata.context")
	out, err := json.Marshal(obj)
	if err != nil {
		return raw
	}
	return out
}

var _ mdebridge.MachineSource = (*Client)(nil)
