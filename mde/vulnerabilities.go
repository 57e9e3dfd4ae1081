package mde

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/mdebridge/mdebridge"
)

// apiVulnerabilities is the CVE catalogue.
const apiVulnerabilities = "GET /api/vulnerabilities"

// MaxVulnerabilitiesPage is the largest $top GET /api/vulnerabilities takes.
const MaxVulnerabilitiesPage = 8000

// wireVulnerability decodes a catalogue entry leniently.
type wireVulnerability struct {
	mdebridge.Vulnerability
	PublishedOn     flexTime `json:"publishedOn"`
	UpdatedOn       flexTime `json:"updatedOn"`
	FirstDetected   flexTime `json:"firstDetected"`
	ExposedMachines flexInt  `json:"exposedMachines"`
}

// DecodeVulnerability decodes one catalogue entry and keeps its raw JSON.
func DecodeVulnerability(raw json.RawMessage) (mdebridge.Vulnerability, error) {
	var w wireVulnerability
	if err := json.Unmarshal(raw, &w); err != nil {
		return mdebridge.Vulnerability{}, err
	}
	v := w.Vulnerability
	v.PublishedOn, v.UpdatedOn, v.FirstDetected = time.Time(w.PublishedOn), time.Time(w.UpdatedOn), time.Time(w.FirstDetected)
	v.ExposedMachines = int(w.ExposedMachines)
	v.Raw = raw
	if v.ID == "" {
		return v, fmt.Errorf("vulnerability without an id")
	}
	return v, nil
}

// ListVulnerabilities hands the CVE catalogue to page, 8,000 entries a call
// (the documented maximum); with updatedAfter, only the entries updated
// since.
func (c *Client) ListVulnerabilities(ctx context.Context, updatedAfter time.Time, page func([]mdebridge.Vulnerability) error) error {
	q := url.Values{}
	if !updatedAfter.IsZero() {
		q.Set("$filter", "updatedOn gt "+updatedAfter.UTC().Format("2006-01-02T15:04:05.9999999Z"))
	}
	n := 0
	return c.list(ctx, listOptions{api: apiVulnerabilities, path: "/api/vulnerabilities", query: q, top: MaxVulnerabilitiesPage},
		func(items []json.RawMessage) error {
			n++
			out := make([]mdebridge.Vulnerability, 0, len(items))
			for i, raw := range items {
				v, err := DecodeVulnerability(raw)
				if err != nil {
					return &MalformedPageError{API: apiVulnerabilities, Page: n, Err: fmt.Errorf("vulnerability %d of the page: %w", i+1, err)}
				}
				out = append(out, v)
			}
			return page(out)
		})
}

var _ mdebridge.ExposureSource = (*Client)(nil)
