package emulator

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge/emulator/kql"
	"github.com/mdebridge/mdebridge/ratelimit"
)

// RateLimits says how strictly the emulator throttles. The zero value
// enforces Microsoft's documented limits.
type RateLimits struct {
	Off     bool // no throttling at all
	Divisor int  // K > 1 divides every window length by K ("xK"): 100/min becomes 100 per 60/K s
}

// ParseRateLimits reads "real", "off" or "xK" (K a whole number ≥ 1).
func ParseRateLimits(s string) (RateLimits, error) {
	switch v := strings.ToLower(strings.TrimSpace(s)); {
	case v == "real" || v == "":
		return RateLimits{}, nil
	case v == "off":
		return RateLimits{Off: true}, nil
	case strings.HasPrefix(v, "x"):
		k, err := strconv.Atoi(v[1:])
		if err == nil && k >= 1 {
			if k == 1 {
				return RateLimits{}, nil
			}
			return RateLimits{Divisor: k}, nil
		}
	}
	return RateLimits{}, fmt.Errorf("rate limits %q: want real, off or xK with K a whole number of at least 1 (x60 makes a minute last a second)", s)
}

// String is the form ParseRateLimits reads.
func (r RateLimits) String() string {
	switch {
	case r.Off:
		return "off"
	case r.Divisor > 1:
		return "x" + strconv.Itoa(r.Divisor)
	}
	return "real"
}

// windows scales the documented windows of one API.
func (r RateLimits) windows(w []ratelimit.Window) []ratelimit.Window {
	if r.Off {
		return nil
	}
	out := make([]ratelimit.Window, len(w))
	for i, x := range w {
		if r.Divisor > 1 {
			x.Per /= time.Duration(r.Divisor)
		}
		out[i] = x
	}
	return out
}

// limitSpec is one API's documented quota (mde-api.md §2.1).
type limitSpec struct {
	windows []ratelimit.Window
	code    string // the 429 error code: "TooManyRequests", or "429" as advanced hunting answers
}

func perMinute(n int) ratelimit.Window { return ratelimit.Window{Limit: n, Per: time.Minute} }
func perHour(n int) ratelimit.Window   { return ratelimit.Window{Limit: n, Per: time.Hour} }

// defaultLimit is the quota of most MDE APIs: 100 calls a minute and 1,500
// an hour. Others, as routes are added: hunting 45/min+1500/h (code "429"),
// alerts batchUpdate 10/min+500/h, indicators import 30/min, getPackageUri
// 2/min+120/h, live response 10/min, machine vulnerabilities 50/min+1500/h,
// export by machine 30/min+1000/h, export via files 5/min+20/h.
var defaultLimit = limitSpec{windows: []ratelimit.Window{perMinute(100), perHour(1500)}, code: "TooManyRequests"}

// timeSpan formats d as .NET prints a TimeSpan ("00:01:00", "01:00:00",
// "00:00:08.5714285"), the way the 429 message shows the window.
func timeSpan(d time.Duration) string { return kql.FormatTimeSpan(d) }
