package mde

import (
	"context"
	"encoding/json"
	"io"
)

// doObject makes call r and decodes the one object MDE answers with.
func doObject[T any](ctx context.Context, c *Client, r request, decode func(json.RawMessage) (T, error)) (*T, error) {
	var v T
	_, err := c.do(ctx, r, func(body io.Reader) error {
		raw, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		v, err = decode(raw)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &v, nil
}
