package mdebridge

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrNotFound is wrapped by every "no such thing" error, wherever it comes from.
var ErrNotFound = errors.New("not found")

// PermissionError says that the credentials lack a permission. A 401 or 403 is
// always reported this way and never as an empty result.
type PermissionError struct {
	API     string   // what was called, e.g. "GET /api/machines"
	Missing []string // any one of these would do, e.g. Machine.Read.All
	Message string   // the service's own words, when it gave any
}

func (e *PermissionError) Error() string {
	var b strings.Builder
	b.WriteString("permission denied")
	if e.API != "" {
		fmt.Fprintf(&b, " for %s", e.API)
	}
	if len(e.Missing) > 0 {
		fmt.Fprintf(&b, ": the application needs one of %s", strings.Join(e.Missing, ", "))
	}
	if e.Message != "" && len(e.Missing) == 0 {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	return b.String()
}

// AuthError is a failure to obtain a token: wrong secret, unknown tenant or
// application, expired secret. Code is the Entra error number (AADSTS code)
// when known; Hint says how to fix it.
type AuthError struct {
	Code  int
	Cause string
	Hint  string
	Err   error
}

func (e *AuthError) Error() string {
	msg := "authentication failed"
	if e.Cause != "" {
		msg += ": " + e.Cause
	}
	if e.Code != 0 {
		msg += fmt.Sprintf(" (AADSTS%d)", e.Code)
	}
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

func (e *AuthError) Unwrap() error { return e.Err }

// AmbiguousError says that a name matched more than one thing.
type AmbiguousError struct {
	Key        string
	Candidates []string
}

func (e *AmbiguousError) Error() string {
	c := slices.Clone(e.Candidates)
	slices.Sort(c)
	return fmt.Sprintf("%q is ambiguous: it matches %s", e.Key, strings.Join(c, ", "))
}

// NotFoundError is a lookup that found nothing; Near lists close matches to
// suggest.
type NotFoundError struct {
	Kind string // "machine"
	Key  string
	Near []string
}

func (e *NotFoundError) Error() string {
	msg := fmt.Sprintf("%s %q not found", e.Kind, e.Key)
	if len(e.Near) > 0 {
		msg += "; did you mean " + strings.Join(e.Near, ", ") + "?"
	}
	return msg
}

func (e *NotFoundError) Unwrap() error { return ErrNotFound }
