// Package mde is the client of the Microsoft Defender for Endpoint API: typed,
// rate-limited, paged and retried. Every call waits on a limiter with the
// API's documented minute and hour windows, so normal operation never meets a
// 429; a 429 that happens anyway is honoured through Retry-After. Failures
// come back classified: *mdebridge.PermissionError for 401/403 (never an empty
// result), *APIError, *MalformedPageError, and ErrThrottled / ErrTransient /
// mdebridge.ErrNotFound through errors.Is.
//
// The package knows nothing of storage or of the sync engine.
package mde

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/ratelimit"
)

// TokenSource hands out bearer tokens for the MDE API.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// Options configure a Client.
type Options struct {
	// BaseURL is the API host, e.g. https://api.securitycenter.microsoft.com. Required.
	BaseURL string
	// Tokens provides bearer tokens. Required.
	Tokens TokenSource
	// HTTPClient defaults to http.DefaultClient.
	HTTPClient *http.Client
	Logger     *slog.Logger
	// Now is the limiter's clock; nil means time.Now.
	Now func() time.Time
	// Limits gives the windows of an API; nil means DocumentedLimits.
	// Return nil to leave an API unlimited.
	Limits func(api string) []ratelimit.Window
	// MaxAttempts per request, retries included (default 6).
	MaxAttempts int
	// AttemptTimeout bounds one attempt, body included (default 5 minutes).
	AttemptTimeout time.Duration
	// MaxBackoff caps the wait between attempts when the service gives no
	// Retry-After (default 1 minute).
	MaxBackoff time.Duration
	// UserAgent is sent with every request.
	UserAgent string
	// HuntingRowCap is the most rows advanced hunting returns (default
	// 100,000, the service's cap): a result this long is taken as cut off.
	HuntingRowCap int
}

// Client calls the MDE API.
type Client struct {
	opts     Options
	base     *url.URL
	limiters *ratelimit.Group
	log      *slog.Logger
}

// New returns a client.
func New(opts Options) (*Client, error) {
	if opts.BaseURL == "" {
		return nil, errors.New("mde: BaseURL is required")
	}
	base, err := url.Parse(strings.TrimSuffix(opts.BaseURL, "/"))
	if err != nil || base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("mde: BaseURL %q must be an https URL", opts.BaseURL)
	}
	if opts.Tokens == nil {
		return nil, errors.New("mde: Tokens is required")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Limits == nil {
		opts.Limits = DocumentedLimits
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 6
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 5 * time.Minute
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Minute
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "mdebridge"
	}
	if opts.HuntingRowCap <= 0 {
		opts.HuntingRowCap = HuntingRowCap
	}
	c := &Client{opts: opts, base: base, log: opts.Logger}
	c.limiters = ratelimit.NewGroup(func(api string) *ratelimit.Limiter {
		return ratelimit.New(opts.Now, safetyMargin(opts.Limits(api))...)
	})
	return c, nil
}

// BaseURL is the API host the client calls.
func (c *Client) BaseURL() string { return c.base.String() }

// request is one logical call, retried as a whole.
type request struct {
	api    string // method and route template, for limits, counts and errors
	method string
	url    string
	body   []byte
	page   int // 1-based page number for list calls, 0 otherwise
	// accept lists the statuses that count as success besides 2xx.
	accept []int
	// maxWait, when set, gives up instead of waiting longer than this for a
	// retry (a quota that frees up in an hour is reported, not waited for).
	maxWait time.Duration
}

// response is an answer. A success that was decoded as it streamed in has
// no body; decodeErr says whether that decoding failed.
type response struct {
	status    int
	header    http.Header
	body      []byte
	decodeErr error
	bytes     int64
}

// do performs a call with limits, a fresh token, retries and classification.
// decode, when set, reads a successful body as it streams in: a body it
// rejects (or that breaks off) is retried like a dropped connection and
// finally reported as *MalformedPageError. decode must start afresh on
// every call, as a retry calls it again.
func (c *Client) do(ctx context.Context, r request, decode func(io.Reader) error) (*response, error) {
	lim := c.limiters.Get(r.api)
	var lastErr error
	for attempt := 1; ; attempt++ {
		if err := lim.Wait(ctx); err != nil {
			return nil, err
		}
		tok, err := c.opts.Tokens.Token(ctx)
		if err != nil {
			return nil, err
		}
		mdebridge.CountAPICall(ctx, r.api)
		start := time.Now()
		resp, err := c.attempt(ctx, r, tok, decode)
		var wait time.Duration
		switch class := classifyAttempt(ctx, resp, err); class {
		case OK:
			if resp.decodeErr == nil {
				c.log.Debug("mde call", "api", r.api, "page", r.page, "status", resp.status, "bytes", resp.bytes, "took", time.Since(start))
				return resp, nil
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s: %w", r.api, ctx.Err())
			}
			lastErr = &MalformedPageError{API: r.api, Page: max(r.page, 1), Err: resp.decodeErr}
			wait = c.backoff(attempt)
		case Permanent:
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.api, err)
			}
			return nil, responseError(r.api, resp.status, resp.body)
		case Retryable:
			if err != nil {
				lastErr = fmt.Errorf("%s: %w: %w", r.api, ErrTransient, err)
				if r.page > 0 {
					lastErr = &MalformedPageError{API: r.api, Page: r.page, Err: fmt.Errorf("%w: %w", ErrTransient, err)}
				}
				wait = c.backoff(attempt)
				break
			}
			lastErr = responseError(r.api, resp.status, resp.body)
			wait = c.backoff(attempt)
			if ra, ok := retryAfter(resp.header); ok {
				wait = ra
			} else if resp.status == http.StatusTooManyRequests {
				wait = min(30*time.Second<<(attempt-1), 4*time.Minute)
			}
			if ae, ok := lastErr.(*APIError); ok {
				ae.RetryAfter = wait
			}
			if r.maxWait > 0 && wait > r.maxWait {
				return nil, lastErr
			}
			if resp.status == http.StatusTooManyRequests {
				// Hold every call of this API, not just this one.
				lim.BlockFor(wait)
			}
		}
		if attempt >= c.opts.MaxAttempts {
			return nil, fmt.Errorf("gave up after %d attempts: %w", attempt, lastErr)
		}
		c.log.Warn("mde call failed, retrying", "api", r.api, "page", r.page, "attempt", attempt, "wait", wait.Round(time.Millisecond), "err", lastErr)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (last error: %v)", ctx.Err(), lastErr)
		case <-t.C:
		}
	}
}

func classifyAttempt(ctx context.Context, resp *response, err error) Class {
	if err != nil {
		if ctx.Err() != nil {
			return Classify(0, errContextDone)
		}
		return Classify(0, err)
	}
	return Classify(resp.status, nil)
}

// maxErrorBody bounds what is read of a body that is not decoded as it streams.
const maxErrorBody = 4 << 20

// attempt sends one HTTP request. A success is handed to decode as it
// streams in; anything else is read in full (bounded).
func (c *Client) attempt(ctx context.Context, r request, token string, decode func(io.Reader) error) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.AttemptTimeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.opts.UserAgent)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := &response{status: resp.StatusCode, header: resp.Header}
	for _, a := range r.accept {
		if out.status == a {
			out.status = http.StatusOK
		}
	}
	cr := &countingReader{r: resp.Body}
	if out.status/100 == 2 && decode != nil {
		out.decodeErr = decode(cr)
		if out.decodeErr == nil {
			// Drain what the decoder left so the connection is reused.
			io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		}
		out.bytes = cr.n
		return out, nil
	}
	if out.body, err = io.ReadAll(io.LimitReader(cr, maxErrorBody)); err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	out.bytes = cr.n
	return out, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// backoff is exponential with full jitter: up to 1s, 2s, 4s … MaxBackoff.
func (c *Client) backoff(attempt int) time.Duration {
	d := min(time.Second<<(attempt-1), c.opts.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// retryAfter reads Retry-After as seconds or an HTTP date.
func retryAfter(h http.Header) (time.Duration, bool) {
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

// url builds an absolute URL on the client's host.
func (c *Client) url(path string, q url.Values) string {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = encodeQuery(q)
	return u.String()
}

// encodeQuery encodes OData options without escaping the '$' of their names,
// as the service's own links do.
func encodeQuery(q url.Values) string {
	return strings.ReplaceAll(q.Encode(), "%24", "$")
}

// sameHost rewrites a link the service returned (nextLink) onto the client's
// own scheme and host. The service echoes whichever host was called and the
// docs show links to other hosts; the path and query are what matter, and the
// bearer token must never travel to a host the user did not configure.
func (c *Client) sameHost(link string) (string, error) {
	u, err := url.Parse(link)
	if err != nil {
		return "", fmt.Errorf("invalid nextLink %q: %w", link, err)
	}
	u.Scheme, u.Host, u.User = c.base.Scheme, c.base.Host, nil
	return u.String(), nil
}
