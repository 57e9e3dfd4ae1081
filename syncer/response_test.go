package syncer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/storetest"
	"github.com/mdebridge/mdebridge/syncer"
)

type fakeIndicators struct {
	list   []mdebridge.Indicator
	during func() // runs in the middle of a listing
	err    error  // refuses the listing
}

func (f *fakeIndicators) ListIndicators(ctx context.Context, page func([]mdebridge.Indicator) error) error {
	if f.err != nil {
		return f.err
	}
	if f.during != nil {
		f.during()
	}
	return page(f.list)
}

func TestIndicatorsStepRetiresDeletedKeepsPushed(t *testing.T) {
	db := openStore(t)
	src := &fakeIndicators{}
	for i := range 6 {
		src.list = append(src.list, storetest.Indicator(i))
	}
	e, err := syncer.New(syncer.Options{Store: db, Steps: []syncer.Step{syncer.IndicatorsStep{Source: src, Store: db}}})
	if err != nil {
		t.Fatal(err)
	}
	run, err := e.Run(t.Context(), syncer.RunOptions{Trigger: "test"})
	if err != nil || run.Status != mdebridge.StatusSucceeded || run.Steps[0].Items != 6 {
		t.Fatalf("first run: %v %+v", err, run)
	}
	// Deleted in MDE: two. Pushed by mdebridge while the next sync lists: one.
	src.list = src.list[2:]
	pushed := storetest.Indicator(40)
	src.during = func() {
		if err := db.UpsertIndicators(t.Context(), 0, []mdebridge.Indicator{pushed}); err != nil {
			t.Error(err)
		}
	}
	run, err = e.Run(t.Context(), syncer.RunOptions{Trigger: "test"})
	if err != nil || run.Steps[0].Retired != 2 {
		t.Fatalf("second run: %v %+v", err, run.Steps)
	}
	if _, err := db.FindIndicator(t.Context(), pushed.ID); err != nil {
		t.Errorf("the pushed indicator was retired: %v", err)
	}
	if c, _ := db.Counts(t.Context()); c["indicators"] != 5 {
		t.Errorf("live indicators: %v", c)
	}
}

// Without Ti.ReadWrite the step is not-permitted: it retires nothing an
// earlier, permitted sync stored, and a run of it alone has done nothing.
func TestIndicatorsStepWithoutPermission(t *testing.T) {
	db := openStore(t)
	src := &fakeIndicators{list: []mdebridge.Indicator{storetest.Indicator(1), storetest.Indicator(2)}}
	e, err := syncer.New(syncer.Options{Store: db, Steps: []syncer.Step{syncer.IndicatorsStep{Source: src, Store: db}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(t.Context(), syncer.RunOptions{Trigger: "test"}); err != nil {
		t.Fatal(err)
	}
	src.err = &mdebridge.PermissionError{API: "GET /api/indicators", Missing: []string{"Ti.ReadWrite", "Ti.ReadWrite.All"}}
	run, err := e.Run(t.Context(), syncer.RunOptions{Trigger: "test"})
	if err != nil || run.Status != mdebridge.StatusFailed || run.Steps[0].Status != mdebridge.StatusNotPermitted ||
		!strings.Contains(run.Steps[0].Error, "Ti.ReadWrite.All") || run.Steps[0].Retired != 0 {
		t.Fatalf("without permission, alone: %v %+v", err, run)
	}
	if c, _ := db.Counts(t.Context()); c["indicators"] != 2 {
		t.Errorf("live indicators: %v", c)
	}
	src.err = errors.New("connection reset")
	if run, _ := e.Run(t.Context(), syncer.RunOptions{Trigger: "test"}); run.Status != mdebridge.StatusFailed {
		t.Errorf("another error: %+v", run)
	}
}

type fakeActions struct {
	list  []mdebridge.MachineAction
	since []time.Time
}

func (f *fakeActions) ListMachineActions(ctx context.Context, since time.Time, page func([]mdebridge.MachineAction) error) error {
	f.since = append(f.since, since)
	var out []mdebridge.MachineAction
	for _, a := range f.list {
		if !a.LastUpdateTime.Before(since) {
			out = append(out, a)
		}
	}
	return page(out)
}

func TestMachineActionsStepIsIncremental(t *testing.T) {
	db := openStore(t)
	src := &fakeActions{}
	for i := range 5 {
		src.list = append(src.list, storetest.Action(i))
	}
	e, err := syncer.New(syncer.Options{Store: db, Steps: []syncer.Step{syncer.MachineActionsStep{Source: src, Store: db}}})
	if err != nil {
		t.Fatal(err)
	}
	if run, err := e.Run(t.Context(), syncer.RunOptions{Trigger: "test"}); err != nil || run.Steps[0].Items != 5 {
		t.Fatalf("first run: %v", err)
	}
	newest := src.list[4].LastUpdateTime
	src.list = append(src.list, storetest.Action(30))
	run, err := e.Run(t.Context(), syncer.RunOptions{Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if want := newest.Add(-10 * time.Minute); !src.since[0].IsZero() || !src.since[1].Equal(want) {
		t.Errorf("listed since %v, want zero then %v", src.since, want)
	}
	// The overlap brings back the last few; only the window is listed.
	if run.Steps[0].Items != 6 {
		t.Errorf("incremental run stored %d actions", run.Steps[0].Items)
	}
	if _, n, _ := db.FindMachineActions(t.Context(), mdebridge.ActionFilter{}); n != 6 {
		t.Errorf("stored %d actions", n)
	}
	if _, err := e.Run(t.Context(), syncer.RunOptions{Trigger: "test", Full: true}); err != nil || !src.since[2].IsZero() {
		t.Errorf("a full run lists everything: %v %v", err, src.since)
	}
}

// A not-permitted step (an optional feature the app is not granted) leaves
// the run succeeded, or failed when the others fail; its dependents are not
// permitted either.
func TestNotPermittedDoesNotCount(t *testing.T) {
	denied := syncer.NotPermitted(&mdebridge.PermissionError{API: "GET /api/x", Missing: []string{"X.Read.All"}})
	for _, tt := range []struct {
		other error
		want  mdebridge.Status
	}{{nil, mdebridge.StatusSucceeded}, {errors.New("boom"), mdebridge.StatusFailed}} {
		e, err := syncer.New(syncer.Options{Store: openStore(t), Steps: []syncer.Step{
			fakeStep{name: "a", run: func(context.Context, *syncer.StepRun) error { return tt.other }},
			fakeStep{name: "b", run: func(context.Context, *syncer.StepRun) error { return denied }},
			fakeStep{name: "c", needs: []string{"b"}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		run, err := e.Run(t.Context(), syncer.RunOptions{Trigger: "test"})
		if err != nil || run.Status != tt.want || run.Steps[1].Status != mdebridge.StatusNotPermitted ||
			!strings.Contains(run.Steps[1].Error, "X.Read.All") || run.Steps[2].Status != mdebridge.StatusNotPermitted {
			t.Errorf("other step %v: %v %+v", tt.other, err, run)
		}
	}
}
