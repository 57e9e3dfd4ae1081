package mde

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
)

// MaxIndicatorBatch is the most indicators one import (or batch delete) takes.
const MaxIndicatorBatch = 500

// wireIndicator decodes an indicator leniently: ids as strings or numbers,
// any timestamp form, rbacGroupNames as a list or a comma-separated string.
type wireIndicator struct {
	mdebridge.Indicator
	ID             flexString      `json:"id"`
	ExpirationTime flexTime        `json:"expirationTime"`
	CreationTime   flexTime        `json:"creationTimeDateTimeUtc"`
	LastUpdateTime flexTime        `json:"lastUpdateTime"`
	RBACGroupNames json.RawMessage `json:"rbacGroupNames"`
	GenerateAlert  *bool           `json:"generateAlert"`
	Application    *string         `json:"application"`
	Recommended    *string         `json:"recommendedActions"`
	EducateURL     *string         `json:"educateUrl"`
	ExternalID     *string         `json:"externalId"`
	LastUpdatedBy  *string         `json:"lastUpdatedBy"`
	CreatedBy      *string         `json:"createdBy"`
	CreatedByName  *string         `json:"createdByDisplayName"`
	CreatedBySrc   *string         `json:"createdBySource"`
	Severity       *string         `json:"severity"`
	Title          *string         `json:"title"`
	Description    *string         `json:"description"`
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// DecodeIndicator decodes one indicator and keeps its raw JSON.
func DecodeIndicator(raw json.RawMessage) (mdebridge.Indicator, error) {
	raw = stripODataContext(raw)
	var w wireIndicator
	if err := json.Unmarshal(raw, &w); err != nil {
		return mdebridge.Indicator{}, err
	}
	in := w.Indicator
	in.ID = string(w.ID)
	in.ExpirationTime, in.CreationTime, in.LastUpdateTime = time.Time(w.ExpirationTime), time.Time(w.CreationTime), time.Time(w.LastUpdateTime)
	in.Application, in.RecommendedActions, in.EducateURL, in.ExternalID = deref(w.Application), deref(w.Recommended), deref(w.EducateURL), deref(w.ExternalID)
	in.LastUpdatedBy, in.CreatedBy, in.CreatedByDisplayName, in.CreatedBySource = deref(w.LastUpdatedBy), deref(w.CreatedBy), deref(w.CreatedByName), deref(w.CreatedBySrc)
	in.Severity, in.Title, in.Description = deref(w.Severity), deref(w.Title), deref(w.Description)
	in.GenerateAlert = w.GenerateAlert != nil && *w.GenerateAlert
	in.RBACGroupNames = nil
	if len(w.RBACGroupNames) > 0 && w.RBACGroupNames[0] == '"' {
		var csv string
		json.Unmarshal(w.RBACGroupNames, &csv)
		for g := range strings.SplitSeq(csv, ",") {
			if g = strings.TrimSpace(g); g != "" {
				in.RBACGroupNames = append(in.RBACGroupNames, g)
			}
		}
	} else if len(w.RBACGroupNames) > 0 && string(w.RBACGroupNames) != "null" {
		if err := json.Unmarshal(w.RBACGroupNames, &in.RBACGroupNames); err != nil {
			return in, fmt.Errorf("rbacGroupNames: %w", err)
		}
	}
	in.Raw = raw
	if in.ID == "" {
		return in, errors.New("indicator without an id")
	}
	return in, nil
}

// ListIndicators hands every indicator the credentials may see to page
// (with Ti.ReadWrite only those the application created).
func (c *Client) ListIndicators(ctx context.Context, page func([]mdebridge.Indicator) error) error {
	n := 0
	return c.list(ctx, listOptions{api: "GET /api/indicators", path: "/api/indicators", top: 10000},
		func(items []json.RawMessage) error {
			n++
			out := make([]mdebridge.Indicator, 0, len(items))
			for i, raw := range items {
				in, err := DecodeIndicator(raw)
				if err != nil {
					return &MalformedPageError{API: "GET /api/indicators", Page: n, Err: fmt.Errorf("indicator %d of the page: %w", i+1, err)}
				}
				out = append(out, in)
			}
			return page(out)
		})
}

// indicatorBody is an indicator as POST /api/indicators and import take it
// (camelCase, unlike the action bodies).
func indicatorBody(in mdebridge.Indicator) map[string]any {
	b := map[string]any{
		"indicatorValue": in.IndicatorValue, "indicatorType": in.IndicatorType, "action": in.Action,
		"title": in.Title, "description": in.Description,
	}
	set := func(k, v string) {
		if v != "" {
			b[k] = v
		}
	}
	set("severity", in.Severity)
	set("application", in.Application)
	set("recommendedActions", in.RecommendedActions)
	set("educateUrl", in.EducateURL)
	if !in.ExpirationTime.IsZero() {
		b["expirationTime"] = in.ExpirationTime.UTC().Format(time.RFC3339)
	}
	if len(in.RBACGroupNames) > 0 {
		b["rbacGroupNames"] = in.RBACGroupNames
	}
	if in.GenerateAlert {
		b["generateAlert"] = true
	}
	return b
}

// SubmitIndicator creates an indicator, or updates the one of the same type
// and value (MDE's POST is an upsert).
func (c *Client) SubmitIndicator(ctx context.Context, in mdebridge.Indicator) (*mdebridge.Indicator, error) {
	data, err := json.Marshal(indicatorBody(in))
	if err != nil {
		return nil, err
	}
	return doObject(ctx, c, request{api: "POST /api/indicators", method: "POST", url: c.url("/api/indicators", nil), body: data}, DecodeIndicator)
}

// ImportIndicators submits up to 500 indicators in one call (30 calls a
// minute) and returns MDE's verdict on each, in order.
func (c *Client) ImportIndicators(ctx context.Context, ins []mdebridge.Indicator) ([]mdebridge.IndicatorResult, error) {
	if len(ins) == 0 || len(ins) > MaxIndicatorBatch {
		return nil, fmt.Errorf("import indicators: %d indicators, want 1 to %d", len(ins), MaxIndicatorBatch)
	}
	items := make([]map[string]any, len(ins))
	for i, in := range ins {
		items[i] = indicatorBody(in)
	}
	data, err := json.Marshal(map[string]any{"Indicators": items})
	if err != nil {
		return nil, err
	}
	var out []mdebridge.IndicatorResult
	_, err = c.do(ctx, request{api: "POST /api/indicators/import", method: "POST", url: c.url("/api/indicators/import", nil), body: data},
		func(body io.Reader) error {
			var v struct {
				Value []struct {
					ID            flexString `json:"id"`
					Indicator     string     `json:"indicator"`
					IsFailed      bool       `json:"isFailed"`
					FailureReason *string    `json:"failureReason"`
				} `json:"value"`
			}
			if err := json.NewDecoder(body).Decode(&v); err != nil {
				return err
			}
			out = out[:0]
			for _, r := range v.Value {
				out = append(out, mdebridge.IndicatorResult{Value: r.Indicator, ID: string(r.ID), Failed: r.IsFailed, Reason: deref(r.FailureReason)})
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	if len(out) != len(ins) {
		return out, fmt.Errorf("import indicators: %d results for %d indicators", len(out), len(ins))
	}
	for i := range out {
		out[i].Type = ins[i].IndicatorType
	}
	return out, nil
}

// DeleteIndicator deletes one indicator by id.
func (c *Client) DeleteIndicator(ctx context.Context, id string) error {
	_, err := c.do(ctx, request{api: "DELETE /api/indicators/{id}", method: "DELETE", url: c.url("/api/indicators/"+url.PathEscape(id), nil)}, nil)
	return err
}

// BatchDeleteIndicators deletes up to 500 indicators, all or none.
func (c *Client) BatchDeleteIndicators(ctx context.Context, ids []string) error {
	if len(ids) == 0 || len(ids) > MaxIndicatorBatch {
		return fmt.Errorf("batch delete indicators: %d ids, want 1 to %d", len(ids), MaxIndicatorBatch)
	}
	data, _ := json.Marshal(map[string][]string{"IndicatorIds": ids})
	_, err := c.do(ctx, request{api: "POST /api/indicators/BatchDelete", method: "POST", url: c.url("/api/indicators/BatchDelete", nil), body: data}, nil)
	return err
}

var _ mdebridge.IndicatorSource = (*Client)(nil)
