package mde

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
)

// decodePage reads one page of an OData collection as it streams in,
// appending each item of "value" to items, and returns the page's nextLink.
// Only the items are kept whole; nothing holds the full body.
func decodePage(r io.Reader, items *[]json.RawMessage) (nextLink string, err error) {
	return decodePageItems(r, func(raw json.RawMessage) error {
		*items = append(*items, raw)
		return nil
	})
}

// decodePageItems is decodePage handing each item to fn as it is decoded,
// so that not even the page's items are held at once. raw is only valid
// during the call.
func decodePageItems(r io.Reader, fn func(raw json.RawMessage) error) (nextLink string, err error) {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return "", err
	}
	sawValue := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", err
		}
		switch key, _ := tok.(string); key {
		case "value":
			sawValue = true
			tok, err := dec.Token()
			if err != nil {
				return "", err
			}
			if tok == nil {
				continue // "value": null
			}
			if d, ok := tok.(json.Delim); !ok || d != '[' {
				return "", fmt.Errorf(`"value" is %v, not an array`, tok)
			}
			for dec.More() {
				var raw json.RawMessage
				if err := dec.Decode(&raw); err != nil {
					return "", err
				}
				if err := fn(raw); err != nil {
					return "", err
				}
			}
			if err := expectDelim(dec, ']'); err != nil {
				return "", err
			}
		case "@odata.nextLink":
			if err := dec.Decode(&nextLink); err != nil {
				return "", fmt.Errorf("@odata.nextLink: %w", err)
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", err
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return "", err
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", errors.New("data after the end of the page")
	}
	if !sawValue {
		return "", errors.New(`no "value" array in the response`)
	}
	return nextLink, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q, found %v", want, tok)
	}
	return nil
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
		var items []json.RawMessage
		var nextLink string
		_, err := c.do(ctx, request{api: o.api, method: "GET", url: next, page: page}, func(body io.Reader) error {
			items = items[:0]
			var err error
			nextLink, err = decodePage(body, &items)
			return err
		})
		if err != nil {
			if page == 1 && o.notFoundIsEmpty && isNotFound(err) {
				return nil
			}
			return fmt.Errorf("list page %d: %w", page, err)
		}
		if len(items) > 0 {
			if prevFirst != nil && bytes.Equal(prevFirst, items[0]) {
				return &MalformedPageError{API: o.api, Page: page, Err: errors.New("the page repeats the previous one (the service ignored $skip)")}
			}
			prevFirst = items[0]
		}
		received += len(items)
		if err := fn(items); err != nil {
			return err
		}
		switch {
		case nextLink != "":
			link, err := c.sameHost(nextLink)
			if err != nil {
				return &MalformedPageError{API: o.api, Page: page, Err: err}
			}
			if seenLinks[link] || link == next {
				return &MalformedPageError{API: o.api, Page: page, Err: fmt.Errorf("nextLink loop: %s was already fetched", nextLink)}
			}
			seenLinks[link] = true
			next = link
		case len(items) < o.top:
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
