package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
)

// doctorReport is what `doctor -o json` prints.
type doctorReport struct {
	Config       string            `json:"config"`
	Cloud        string            `json:"cloud"`
	Auth         string            `json:"auth"`
	Endpoints    map[string]string `json:"endpoints"`
	Token        tokenCheck        `json:"token"`
	Reachability reachCheck        `json:"reachability"`
	Features     []featureCheck    `json:"features"`
}

type tokenCheck struct {
	OK        bool       `json:"ok"`
	AppID     string     `json:"appId,omitempty"`
	TenantID  string     `json:"tenantId,omitempty"`
	Audience  string     `json:"audience,omitempty"`
	Roles     []string   `json:"roles"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	Error     string     `json:"error,omitempty"`
}

type reachCheck struct {
	OK    bool   `json:"ok"`
	URL   string `json:"url"`
	Error string `json:"error,omitempty"`
}

type featureCheck struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Needs       []string `json:"needsAnyOf"`
	Granted     []string `json:"granted"`
	OK          bool     `json:"ok"`
	Fix         string   `json:"fix,omitempty"`
}

func cmdDoctor(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	out := fs.String("o", "table", "output: table or json")
	if ok, code := parseFlags(fs, env, g, args, "doctor [-o table|json]"); !ok {
		return code
	}
	if err := checkFormat("doctor", *out, "table", "json"); err != nil {
		return usageError(env, "doctor", "%v", err)
	}
	a, err := newApp(env, g, "warn")
	if err != nil {
		return fail(env, "doctor", err)
	}
	defer a.Close()
	rep := doctorReport{
		Config: a.Config.Path, Cloud: a.Cloud.Name, Auth: a.Config.Azure.AuthKind(),
		Endpoints:    map[string]string{"login": a.Cloud.LoginAuthority, "mde": a.Cloud.MDEBaseURL, "mdeScope": a.Cloud.MDEScope(), "portal": a.Cloud.PortalURL},
		Token:        tokenCheck{Roles: []string{}},
		Reachability: reachCheck{URL: a.Cloud.MDEBaseURL + "/api/machines"},
	}
	if rep.Config == "" {
		rep.Config = "(environment)"
	}
	code := doctor(ctx, a, &rep)
	if *out == "json" {
		writeJSON(env.Stdout, rep)
	} else {
		printDoctor(env.Stdout, &rep)
	}
	return code
}

func doctor(ctx context.Context, a *App, rep *doctorReport) int {
	tokens, err := a.Tokens()
	var tok string
	if err == nil {
		tok, err = tokens.Token(ctx)
	}
	if err != nil {
		rep.Token.Error = describe(err)
		return ExitFailure
	}
	rep.Token.OK = true
	claims, jwtErr := decodeClaims(tok)
	if jwtErr == nil {
		rep.Token.AppID, rep.Token.TenantID, rep.Token.Audience, rep.Token.Roles = claims.AppID, claims.TenantID, claims.Audience, claims.Roles
		if rep.Token.Roles == nil {
			rep.Token.Roles = []string{}
		}
		if claims.Exp > 0 {
			t := time.Unix(claims.Exp, 0).UTC()
			rep.Token.ExpiresAt = &t
		}
	}
	client, err := a.MDE()
	if err == nil {
		err = client.Probe(ctx)
	}
	var pe *mdebridge.PermissionError
	switch {
	case err == nil:
		rep.Reachability.OK = true
	case errors.As(err, &pe):
		// Reached and authenticated; the missing permission shows below.
		rep.Reachability.OK = true
		if jwtErr != nil {
			rep.Reachability.Error = describe(err)
		}
	default:
		rep.Reachability.Error = describe(err)
	}
	code := ExitOK
	for _, f := range mdebridge.Features() {
		fc := featureCheck{Name: f.Name, Description: f.Description, Needs: f.AnyOf, Granted: []string{}}
		for _, r := range f.AnyOf {
			if slices.Contains(rep.Token.Roles, r) {
				fc.Granted = append(fc.Granted, r)
			}
		}
		fc.OK = len(fc.Granted) > 0
		if !fc.OK {
			fc.Fix = fmt.Sprintf("add the application permission %s: %s", f.AnyOf[0], permissionFix)
			code = ExitPartial
		}
		rep.Features = append(rep.Features, fc)
	}
	if !rep.Reachability.OK {
		code = ExitFailure
	}
	return code
}

type jwtClaims struct {
	AppID    string   `json:"appid"`
	TenantID string   `json:"tid"`
	Audience string   `json:"aud"`
	Roles    []string `json:"roles"`
	Exp      int64    `json:"exp"`
}

// decodeClaims reads a JWT's claims without verifying it: the token came
// from our own credential, and doctor only displays what it says.
func decodeClaims(tok string) (jwtClaims, error) {
	var c jwtClaims
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return c, errors.New("not a JWT")
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(body, &c)
}

func printDoctor(w io.Writer, r *doctorReport) {
	mark := func(ok bool) string {
		if ok {
			return "ok  "
		}
		return "FAIL"
	}
	fmt.Fprintf(w, "Configuration  %s (cloud %s, auth %s)\n", r.Config, r.Cloud, r.Auth)
	fmt.Fprintf(w, "               login %s, MDE %s, scope %s\n\n", r.Endpoints["login"], r.Endpoints["mde"], r.Endpoints["mdeScope"])
	fmt.Fprintf(w, "[%s] Token", mark(r.Token.OK))
	if r.Token.OK {
		fmt.Fprintf(w, " for app %s in tenant %s", r.Token.AppID, r.Token.TenantID)
		if len(r.Token.Roles) > 0 {
			fmt.Fprintf(w, "; roles: %s", strings.Join(r.Token.Roles, ", "))
		} else {
			fmt.Fprint(w, "; no application roles")
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, ": %s\n", r.Token.Error)
		return
	}
	fmt.Fprintf(w, "[%s] Reach %s", mark(r.Reachability.OK), r.Reachability.URL)
	if r.Reachability.Error != "" {
		fmt.Fprintf(w, ": %s", r.Reachability.Error)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
	writeTable(w, []column[featureCheck]{
		{"FEATURE", func(f featureCheck) string { return f.Name }},
		{"OK", func(f featureCheck) string {
			if f.OK {
				return "yes"
			}
			return "NO"
		}},
		{"NEEDS ONE OF", func(f featureCheck) string { return strings.Join(f.Needs, " | ") }},
		{"GRANTED", func(f featureCheck) string { return strings.Join(f.Granted, ", ") }},
		{"WHAT IT IS FOR", func(f featureCheck) string { return f.Description }},
	}, r.Features)
	missing := 0
	for _, f := range r.Features {
		if !f.OK {
			missing++
		}
	}
	if missing > 0 {
		fmt.Fprintf(w, "\n%d feature(s) lack a permission. To grant one: %s.\n", missing, permissionFix)
	}
}
