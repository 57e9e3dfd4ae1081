package mde

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
)

// Advanced hunting: POST /api/advancedqueries/run with {"Query": "..."}
// answers {"Schema":[{"Name","Type"}],"Results":[{...}]} (mde-api.md §5.6),
// at most 100,000 rows and no paging.

// HuntingAPI names the advanced hunting endpoint in limits and counts.
const HuntingAPI = "POST /api/advancedqueries/run"

// HuntingRowCap is the service's row cap.
const HuntingRowCap = 100_000

// huntingMaxWait is the longest a hunting call waits for a quota to free up
// before it reports the quota instead: a spent CPU quota frees up within
// the hour, which no caller wants to sit through.
const huntingMaxWait = 2 * time.Minute

// RunHuntingQuery runs a query and returns its schema and rows, each row
// kept as the service's JSON object.
func (c *Client) RunHuntingQuery(ctx context.Context, query string) (*mdebridge.HuntingResult, error) {
	schema, rows, err := c.hunt(ctx, query)
	if err != nil {
		return nil, err
	}
	return &mdebridge.HuntingResult{Schema: schema, Results: rows, Truncated: len(rows) >= c.opts.HuntingRowCap}, nil
}

// hunt runs a query and returns the answer's schema and raw rows.
func (c *Client) hunt(ctx context.Context, query string) ([]mdebridge.HuntingColumn, []json.RawMessage, error) {
	body, err := json.Marshal(struct {
		Query string `json:"Query"`
	}{query})
	if err != nil {
		return nil, nil, err
	}
	var schema []mdebridge.HuntingColumn
	var rows []json.RawMessage
	_, err = c.do(ctx, request{api: HuntingAPI, method: "POST", url: c.url("/api/advancedqueries/run", nil), body: body,
		maxWait: huntingMaxWait}, func(r io.Reader) error {
		schema, rows = []mdebridge.HuntingColumn{}, []json.RawMessage{}
		return decodeHunting(r, func(s []mdebridge.HuntingColumn) { schema = s }, func(row json.RawMessage) {
			rows = append(rows, row)
		})
	})
	if err != nil {
		return nil, nil, huntingError(err)
	}
	return schema, rows, nil
}

// huntingError reports a 429 as the quota it is and a 400 as the refused
// query it is.
func huntingError(err error) error {
	var ae *APIError
	switch {
	case !errors.As(err, &ae):
		return err
	case ae.Status == 429:
		return &mdebridge.HuntingQuotaError{CPU: strings.Contains(strings.ToLower(ae.Message), "cpu"),
			RetryAfter: ae.RetryAfter, Message: ae.Message, Err: err}
	case ae.Status == 400 && ae.Message != "":
		return &mdebridge.HuntingQueryError{Message: ae.Message, Err: err}
	}
	return err
}

// decodeHunting reads a hunting answer as it streams in: the Schema, then
// each row of Results handed to row. Stats and unknown keys are skipped.
func decodeHunting(r io.Reader, schema func([]mdebridge.HuntingColumn), row func(json.RawMessage)) error {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	sawResults := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch key, _ := tok.(string); key {
		case "Schema":
			var cols []mdebridge.HuntingColumn
			if err := dec.Decode(&cols); err != nil {
				return fmt.Errorf("Schema: %w", err)
			}
			if cols == nil {
				cols = []mdebridge.HuntingColumn{}
			}
			schema(cols)
		case "Results":
			sawResults = true
			tok, err := dec.Token()
			if err != nil {
				return fmt.Errorf("Results: %w", err)
			}
			if tok == nil {
				continue // "Results": null
			}
			if d, ok := tok.(json.Delim); !ok || d != '[' {
				return fmt.Errorf("Results is %v, not an array", tok)
			}
			for dec.More() {
				var raw json.RawMessage
				if err := dec.Decode(&raw); err != nil {
					return fmt.Errorf("Results: %w", err)
				}
				if len(raw) == 0 || raw[0] != '{' {
					return fmt.Errorf("Results: a row is %s, not an object", raw)
				}
				row(raw)
			}
			if err := expectDelim(dec, ']'); err != nil {
				return err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return err
	}
	if !sawResults {
		return errors.New(`no "Results" in the response`)
	}
	return nil
}
