package mde

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
)

// odataPage is one page of an OData collection.
type odataPage struct {
	Context  string            `json:"@odata.context"`
	Value    []json.RawMessage `json:"value"`
	NextLink string            `json:"@odata.nextLink"`
}

func decodePage(body []byte) (*odataPage, error) {
	var p odataPage
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, err
	}
	if p.Value == nil && !bytes.Contains(body, []byte(`"value"`)) {
		return nil, errors.New(`no "value" array in the response`)
	}
	return &p, nil
}

// listOptions describe an OData list call.
type listOptions struct {
	api   string     // e.g. "GET /api/machines"
	path  string     // e.g. "/api/machines"
	query url.Values // $filter, $select …; $top and $skip are set here
	top   int        // page size, at most the entity's documented maximum
	// notFoundIsEmpty treats a 404 on the first page as an empty collection
	// (list machines answers 404 when a tenant has no recent machines).
	notFoundIsEmpty bool
}

// list pages through a collection with $top and $skip until a short page,
// following @odata.nextLink instead when the service gives one, and hands
// each page's raw items to fn. It refuses nextLink loops and a service that
// ignores $skip, both of which would otherwise never end.
func (c *Client) list(ctx context.Context, o listOptions, fn func(items []json.RawMessage) error) error {
	q := url.Values{}
	for k, v := range o.query {
		q[k] = v
	}
	received := 0
	q.Set("$top", strconv.Itoa(o.top))
	q.Set("$skip", "0")
	next := c.url(o.path, q)
	seenLinks := map[string]bool{}
	var prevFirst json.RawMessage
	for page := 1; ; page++ {
		var p *odataPage
		_, err := c.do(ctx, request{api: o.api, method: "GET", url: next, page: page}, func(body []byte) error {
			var err error
			p, err = decodePage(body)
			return err
		})
		if err != nil {
			if page == 1 && o.notFoundIsEmpty && isNotFound(err) {
				return nil
			}
			return fmt.Errorf("list page %d: %w", page, err)
		}
		if len(p.Value) > 0 {
			if prevFirst != nil && bytes.Equal(prevFirst, p.Value[0]) {
				return &MalformedPageError{API: o.api, Page: page, Err: errors.New("the page repeats the previous one (the service ignored $skip)")}
			}
			prevFirst = p.Value[0]
		}
		received += len(p.Value)
		if err := fn(p.Value); err != nil {
			return err
		}
		switch {
		case p.NextLink != "":
			link, err := c.sameHost(p.NextLink)
			if err != nil {
				return &MalformedPageError{API: o.api, Page: page, Err: err}
			}
			if seenLinks[link] || link == next {
				return &MalformedPageError{API: o.api, Page: page, Err: fmt.Errorf("nextLink loop: %s was already fetched", p.NextLink)}
			}
			seenLinks[link] = true
			next = link
		case len(p.Value) < o.top:
			return nil
		default:
			q.Set("$skip", strconv.Itoa(received))
			next = c.url(o.path, q)
		}
	}
}

func isNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == 404
}
