package mde

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
)

var (
	// ErrThrottled is wrapped by errors for calls the service refused with 429.
	ErrThrottled = errors.New("throttled by the service (429)")
	// ErrTransient is wrapped by errors that a later attempt may not meet:
	// 5xx answers, timeouts, dropped connections, truncated bodies.
	ErrTransient = errors.New("transient upstream failure")
)

// Class says what to do about an upstream answer.
type Class int

const (
	OK        Class = iota // use the answer
	Retryable              // try again later (after Retry-After when given)
	Permanent              // give up and report
)

func (c Class) String() string {
	return [...]string{"ok", "retryable", "permanent"}[c]
}

// Classify is the one place that decides whether an HTTP status or a transport
// error is worth retrying: 429, 408 and 5xx are; 4xx are not; transport
// errors (timeouts, resets) are, unless the context itself ended.
func Classify(status int, err error) Class {
	if err != nil {
		if errors.Is(err, errContextDone) {
			return Permanent
		}
		return Retryable
	}
	switch {
	case status >= 200 && status < 300:
		return OK
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout, status >= 500:
		return Retryable
	default:
		return Permanent
	}
}

// errContextDone marks transport errors caused by our own context.
var errContextDone = errors.New("context done")

// APIError is an error answer from the MDE API.
type APIError struct {
	API     string // e.g. "GET /api/machines"
	Status  int
	Code    string // the service's error code, e.g. ODataError, ResourceNotFound
	Message string
	Target  string // the service's request id, for support cases
	// RetryAfter is how long the service (or the backoff) said to wait
	// before trying again, for answers that may be retried.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d %s", e.API, e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	return b.String()
}

// Unwrap lets callers test errors.Is(err, mdebridge.ErrNotFound),
// ErrThrottled or ErrTransient.
func (e *APIError) Unwrap() error {
	switch {
	case e.Status == http.StatusNotFound:
		return mdebridge.ErrNotFound
	case e.Status == http.StatusTooManyRequests:
		return ErrThrottled
	case e.Status >= 500 || e.Status == http.StatusRequestTimeout:
		return ErrTransient
	}
	return nil
}

// MalformedPageError is a page whose body could not be read or decoded.
type MalformedPageError struct {
	API  string
	Page int // 1-based
	Err  error
}

func (e *MalformedPageError) Error() string {
	return fmt.Sprintf("%s page %d: malformed response: %v", e.API, e.Page, e.Err)
}

func (e *MalformedPageError) Unwrap() error { return e.Err }

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Target  string `json:"target"`
	} `json:"error"`
}

// Two wordings of the service's 403 message: the long-standing one and the
// one seen from 2026.
var (
	oldForbidden = regexp.MustCompile(`required application permissions \(([^)]*)\)`)
	newForbidden = regexp.MustCompile(`API required roles: ([^,]+(?:,\s*[A-Za-z.]+)*?)(?:, application roles|\.?$)`)
)

// responseError builds the error for a non-2xx answer. A 401 or 403 becomes
// *mdebridge.PermissionError naming the missing roles: from the service's
// message when it lists them, else from what the API is documented to need.
func responseError(api string, status int, body []byte) error {
	var eb errorBody
	_ = json.Unmarshal(body, &eb) // a 401 body need not be JSON
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		pe := &mdebridge.PermissionError{API: api, Message: eb.Error.Message}
		if status == http.StatusForbidden && eb.Error.Code != "" && eb.Error.Code != "Forbidden" {
			// DisabledFeature, DisallowedOperation: not a missing role.
			return &APIError{API: api, Status: status, Code: eb.Error.Code, Message: eb.Error.Message, Target: eb.Error.Target}
		}
		if status == http.StatusUnauthorized {
			pe.Message = "the service rejected the token (401): check azure.cloud and azure.endpoints.mde_resource, the token's audience must be the MDE API of that cloud"
			return pe
		}
		pe.Missing = parseRoles(eb.Error.Message)
		if len(pe.Missing) == 0 {
			pe.Missing = RequiredRoles(api)
		}
		return pe
	}
	return &APIError{API: api, Status: status, Code: eb.Error.Code, Message: eb.Error.Message, Target: eb.Error.Target}
}

func parseRoles(msg string) []string {
	var list string
	if m := oldForbidden.FindStringSubmatch(msg); m != nil {
		list = m[1]
	} else if m := newForbidden.FindStringSubmatch(msg); m != nil {
		list = m[1]
	}
	var roles []string
	for _, r := range strings.Split(list, ",") {
		if r = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(r), ".")); r != "" {
			roles = append(roles, r)
		}
	}
	return roles
}
