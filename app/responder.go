package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/response"
)

// Responder builds the response service on first use.
func (a *App) Responder(ctx context.Context) (*response.Service, error) {
	if a.resp != nil {
		return a.resp, nil
	}
	store, err := a.Store(ctx)
	if err != nil {
		return nil, err
	}
	client, err := a.MDE()
	if err != nil {
		return nil, err
	}
	r := a.Config.Response
	svc, err := response.New(response.Options{
		Client: client, Store: store, Logger: a.Log.With("component", "response"),
		WaitTimeout: time.Duration(r.WaitTimeout), Concurrency: r.Concurrency,
		Indicators: mdebridge.IndicatorDefaults{Action: a.Config.Indicators.DefaultAction, Severity: a.Config.Indicators.DefaultSeverity,
			Expiration: time.Duration(a.Config.Indicators.DefaultExpiration)},
	})
	if err != nil {
		return nil, err
	}
	a.resp = svc
	return svc, nil
}

// actor is who acts, for the audit log: the configuration's response.actor,
// else the user running the command on this host.
func (a *App) actor(env *Env) string {
	if a.Config.Response.Actor != "" {
		return a.Config.Response.Actor
	}
	user := env.Getenv("USER")
	if user == "" {
		user = env.Getenv("USERNAME")
	}
	if user == "" {
		user = "unknown"
	}
	host, _ := os.Hostname()
	if host == "" {
		return user
	}
	return user + "@" + host
}

// printResponseState shows, under a machine, what the response actions in
// the store say about it: isolation and code restriction in force (the
// last such action that succeeded), and the actions still open. MDE's
// machine entity does not carry these.
func printResponseState(ctx context.Context, w io.Writer, store mdebridge.ActionStore, machineID string) {
	as, _, err := store.FindMachineActions(ctx, mdebridge.ActionFilter{MachineID: machineID, Limit: 200})
	if err != nil || len(as) == 0 {
		return
	}
	state := func(on, off string) string {
		for _, a := range as { // newest first
			if a.Status != mdebridge.ActionStatusSucceeded || (a.Type != on && a.Type != off) {
				continue
			}
			if a.Type == off {
				return "no (released " + fmtTime(a.LastUpdateTime) + ")"
			}
			return strings.TrimSpace("yes "+a.Scope) + " (since " + fmtTime(a.LastUpdateTime) + ", action " + a.ID + ")"
		}
		return "no"
	}
	fmt.Fprintln(w, "\nResponse (from the actions in the store):")
	fmt.Fprintf(w, "%-18s %s\n", "Isolated:", state(mdebridge.ActionIsolate, mdebridge.ActionUnisolate))
	fmt.Fprintf(w, "%-18s %s\n", "Code restricted:", state(mdebridge.ActionRestrict, mdebridge.ActionUnrestrict))
	var open []mdebridge.MachineAction
	for _, a := range as {
		if !mdebridge.ActionFinal(a.Status) {
			open = append(open, a)
		}
	}
	if len(open) > 0 {
		fmt.Fprintln(w, "Open actions:")
		writeTable(w, actionColumns[:4], open)
	}
}
