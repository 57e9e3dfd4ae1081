package mde

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mdebridge/mdebridge"
)

// Files, IPs, domains and users (mde-api.md §5.9): what enrichment reads.
// Profiles and statistics are returned as MDE's raw objects, so that every
// field Microsoft sends (and the casing quirks, globallyPrevalence and
// orgPrevalence as a string among them) reaches the user unchanged.

// entity reads one JSON object and returns it without @odata.context.
func (c *Client) entity(ctx context.Context, api, u string) (json.RawMessage, error) {
	var raw json.RawMessage
	_, err := c.do(ctx, request{api: api, method: "GET", url: u}, func(body io.Reader) error {
		data, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		if !json.Valid(data) || len(data) == 0 || data[0] != '{' {
			return errors.New("the response is not a JSON object")
		}
		raw = stripODataContext(data)
		return nil
	})
	return raw, err
}

func lookBack(hours int) url.Values {
	if hours <= 0 {
		return nil
	}
	return url.Values{"lookBackHours": {strconv.Itoa(hours)}}
}

// GetFile returns a file's profile by SHA-1 or SHA-256.
func (c *Client) GetFile(ctx context.Context, hash string) (json.RawMessage, error) {
	return c.entity(ctx, "GET /api/files/{id}", c.url("/api/files/"+url.PathEscape(hash), nil))
}

// FileStats returns a file's prevalence in the organisation and globally
// over the last lookBackHours (0: MDE's default, 30 days).
func (c *Client) FileStats(ctx context.Context, hash string, lookBackHours int) (json.RawMessage, error) {
	return c.entity(ctx, "GET /api/files/{id}/stats", c.url("/api/files/"+url.PathEscape(hash)+"/stats", lookBack(lookBackHours)))
}

// FileMachines returns the machines that have a file (SHA-1 only).
func (c *Client) FileMachines(ctx context.Context, sha1 string) ([]mdebridge.Machine, error) {
	return c.machineCollection(ctx, "GET /api/files/{id}/machines", c.url("/api/files/"+url.PathEscape(sha1)+"/machines", nil))
}

// IPStats returns an IP address's prevalence in the organisation.
func (c *Client) IPStats(ctx context.Context, ip string, lookBackHours int) (json.RawMessage, error) {
	return c.entity(ctx, "GET /api/ips/{ip}/stats", c.url("/api/ips/"+url.PathEscape(ip)+"/stats", lookBack(lookBackHours)))
}

// DomainStats returns a domain's prevalence in the organisation.
func (c *Client) DomainStats(ctx context.Context, domain string, lookBackHours int) (json.RawMessage, error) {
	return c.entity(ctx, "GET /api/domains/{domain}/stats", c.url("/api/domains/"+url.PathEscape(domain)+"/stats", lookBack(lookBackHours)))
}

// DomainMachines returns the machines that communicated with a domain (at
// most 500).
func (c *Client) DomainMachines(ctx context.Context, domain string) ([]mdebridge.Machine, error) {
	return c.machineCollection(ctx, "GET /api/domains/{domain}/machines", c.url("/api/domains/"+url.PathEscape(domain)+"/machines", nil))
}

// UserMachines returns the machines a user account (its name, not a UPN)
// logged on to.
func (c *Client) UserMachines(ctx context.Context, user string) ([]mdebridge.Machine, error) {
	return c.machineCollection(ctx, "GET /api/users/{id}/machines", c.url("/api/users/"+url.PathEscape(user)+"/machines", nil))
}

// DownloadError is a refused download of a pre-signed link: expired,
// tampered with, or gone.
type DownloadError struct {
	Status int
	Body   string
}

func (e *DownloadError) Error() string {
	msg := fmt.Sprintf("download refused: %d %s", e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Expired reports whether the link was refused as no longer valid (403),
// in which case a new one must be asked for.
func (e *DownloadError) Expired() bool { return e.Status == http.StatusForbidden }

// Download fetches a pre-signed link (an investigation package, a live
// response result) into the writer open returns. The link carries its own
// authorisation: no bearer token is sent, and the link is followed to
// whichever host it names, since that is another service than the API.
// A transfer cut short is retried from the start, calling open again.
func (c *Client) Download(ctx context.Context, link string, open func() (io.Writer, error)) (int64, error) {
	u, err := url.Parse(link)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return 0, fmt.Errorf("download: %q is not an https link", link)
	}
	var lastErr error
	for attempt := 1; attempt <= c.opts.MaxAttempts; attempt++ {
		n, status, body, err := c.downloadOnce(ctx, link, open)
		var oe *openError
		switch {
		case err == nil && status/100 == 2:
			return n, nil
		case errors.As(err, &oe):
			return 0, oe.err
		case ctx.Err() != nil:
			return n, ctx.Err()
		case err != nil:
			lastErr = fmt.Errorf("download: %w: %w", ErrTransient, err)
		case Classify(status, nil) == Retryable:
			lastErr = &DownloadError{Status: status, Body: body}
		default:
			return 0, &DownloadError{Status: status, Body: body}
		}
		t := time.NewTimer(c.backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-t.C:
		}
	}
	return 0, fmt.Errorf("gave up after %d attempts: %w", c.opts.MaxAttempts, lastErr)
}

func (c *Client) downloadOnce(ctx context.Context, link string, open func() (io.Writer, error)) (int64, int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", link, nil)
	if err != nil {
		return 0, 0, "", err
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return 0, 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return 0, resp.StatusCode, string(b), nil
	}
	w, err := open()
	if err != nil {
		return 0, 0, "", &openError{err}
	}
	n, err := io.Copy(w, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	return n, resp.StatusCode, "", err
}

// openError is a failure to open the destination of a download: ours, not
// the transfer's, so not worth a retry.
type openError struct{ err error }

func (e *openError) Error() string { return e.err.Error() }

// entityAlerts reads the alerts related to an entity, as MDE's raw objects
// (with evidence): enrichment shows them as they are.
func (c *Client) entityAlerts(ctx context.Context, api, path string) ([]json.RawMessage, error) {
	items, err := c.collection(ctx, api, c.url(path, nil))
	if err != nil {
		return nil, err
	}
	for i := range items {
		items[i] = stripODataContext(items[i])
	}
	return items, nil
}

// FileAlerts returns the alerts related to a file (SHA-1 or SHA-256).
func (c *Client) FileAlerts(ctx context.Context, hash string) ([]json.RawMessage, error) {
	return c.entityAlerts(ctx, "GET /api/files/{id}/alerts", "/api/files/"+url.PathEscape(hash)+"/alerts")
}

// IPAlerts returns the alerts related to an IP address.
func (c *Client) IPAlerts(ctx context.Context, ip string) ([]json.RawMessage, error) {
	return c.entityAlerts(ctx, "GET /api/ips/{ip}/alerts", "/api/ips/"+url.PathEscape(ip)+"/alerts")
}

// DomainAlerts returns the alerts related to a domain.
func (c *Client) DomainAlerts(ctx context.Context, domain string) ([]json.RawMessage, error) {
	return c.entityAlerts(ctx, "GET /api/domains/{domain}/alerts", "/api/domains/"+url.PathEscape(domain)+"/alerts")
}

// UserAlerts returns the alerts related to a user account (its name).
func (c *Client) UserAlerts(ctx context.Context, user string) ([]json.RawMessage, error) {
	return c.entityAlerts(ctx, "GET /api/users/{id}/alerts", "/api/users/"+url.PathEscape(user)+"/alerts")
}
