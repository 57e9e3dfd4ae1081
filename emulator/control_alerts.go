package emulator

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// The control API's alert routes: inject alerts and changes now, and set
// the background alert activity (README.md, "Alerts").

func (s *Server) addAlertControlRoutes() {
	add := func(method, template string, h func(*exchange)) {
		s.routes.add(&route{method: method, template: template, surface: surfaceControl, handle: h})
	}
	add("POST", "/_emulator/alerts", s.controlAddAlerts)
	add("POST", "/_emulator/alerts/updates", s.controlChangeAlerts)
	add("GET", "/_emulator/activity", func(x *exchange) { x.json(http.StatusOK, s.Activity()) })
	add("PUT", "/_emulator/activity", s.controlSetActivity)
}

// controlAlerts is the answer of the injection routes.
type controlAlerts struct {
	IDs    []string     `json:"ids"`
	Alerts []AlertStamp `json:"alerts"`
}

func stampsAnswer(st []AlertStamp) controlAlerts {
	out := controlAlerts{IDs: make([]string, len(st)), Alerts: st}
	for i, a := range st {
		out.IDs[i] = a.ID
	}
	return out
}

func (s *Server) controlAddAlerts(x *exchange) {
	var req struct {
		Count           int       `json:"count"`
		Seed            *int64    `json:"seed"`
		SharedTimestamp bool      `json:"sharedTimestamp"`
		CreationTime    time.Time `json:"creationTime"`
		LastUpdateTime  time.Time `json:"lastUpdateTime"`
		VisibleAfterMs  int       `json:"visibleAfterMs"`
		MachineID       string    `json:"machineId"`
		UnknownMachine  bool      `json:"unknownMachine"`
		Severity        string    `json:"severity"`
		Category        string    `json:"category"`
	}
	if !x.decodeControl(&req) {
		return
	}
	spec := AlertSpec{Count: req.Count, Seed: s.now().UnixNano(), SharedTimestamp: req.SharedTimestamp, CreationTime: req.CreationTime,
		LastUpdateTime: req.LastUpdateTime, VisibleAfter: time.Duration(req.VisibleAfterMs) * time.Millisecond,
		MachineID: req.MachineID, UnknownMachine: req.UnknownMachine, Severity: req.Severity, Category: req.Category}
	if req.Seed != nil {
		spec.Seed = *req.Seed
	}
	st, err := s.tenant.AddAlerts(spec)
	if err != nil {
		x.controlError(http.StatusBadRequest, err.Error())
		return
	}
	s.log.Info("emulator: alerts added", "count", len(st), "shared", req.SharedTimestamp, "total", s.tenant.AlertCount())
	x.json(http.StatusCreated, stampsAnswer(st))
}

func (s *Server) controlChangeAlerts(x *exchange) {
	var req struct {
		IDs             []string `json:"ids"`
		Count           int      `json:"count"`
		Seed            *int64   `json:"seed"`
		SharedTimestamp bool     `json:"sharedTimestamp"`
		Status          string   `json:"status"`
		AssignedTo      string   `json:"assignedTo"`
		Classification  string   `json:"classification"`
		Determination   string   `json:"determination"`
		Comment         string   `json:"comment"`
		AddEvidence     bool     `json:"addEvidence"`
	}
	if !x.decodeControl(&req) {
		return
	}
	ch := AlertChange{IDs: req.IDs, Count: req.Count, Seed: s.now().UnixNano(), SharedTimestamp: req.SharedTimestamp,
		Status: req.Status, AssignedTo: req.AssignedTo, Classification: req.Classification, Determination: req.Determination,
		Comment: req.Comment, AddEvidence: req.AddEvidence}
	if req.Seed != nil {
		ch.Seed = *req.Seed
	}
	st, err := s.tenant.ChangeAlerts(ch)
	if err != nil {
		x.controlError(http.StatusBadRequest, err.Error())
		return
	}
	s.log.Info("emulator: alerts changed", "count", len(st))
	x.json(http.StatusOK, stampsAnswer(st))
}

// Activity is the background alert traffic of a running emulator: new
// alerts and changes to existing ones arriving over time, some of the new
// ones late, some in bursts that share one timestamp. The zero value is no
// activity.
type Activity struct {
	AlertsPerMinute  float64 `json:"alertsPerMinute"`
	UpdatesPerMinute float64 `json:"updatesPerMinute"`
	// LateFraction of the new alerts show up LateSeconds (30 to 120 when
	// 0) after they were stamped, behind a client's watermark.
	LateFraction float64 `json:"lateFraction"`
	LateSeconds  int     `json:"lateSeconds,omitempty"`
	// Every BurstEverySeconds a burst of BurstSize alerts arrives with one
	// shared lastUpdateTime.
	BurstEverySeconds int `json:"burstEverySeconds,omitempty"`
	BurstSize         int `json:"burstSize,omitempty"`
}

func (a Activity) check() error {
	switch {
	case a.AlertsPerMinute < 0 || a.UpdatesPerMinute < 0 || a.AlertsPerMinute > 100_000 || a.UpdatesPerMinute > 100_000:
		return fmt.Errorf("rates must be from 0 to 100000 a minute")
	case a.LateFraction < 0 || a.LateFraction > 1:
		return fmt.Errorf("lateFraction %v: want 0 to 1", a.LateFraction)
	case a.LateSeconds < 0 || a.BurstEverySeconds < 0 || a.BurstSize < 0 || a.BurstSize > maxAlertBatch:
		return fmt.Errorf("lateSeconds, burstEverySeconds and burstSize must be 0 or more (burstSize at most %d)", maxAlertBatch)
	}
	return nil
}

// activityState is the server's activity setting and what its ticks carry
// over.
type activityState struct {
	mu        sync.Mutex
	set       Activity
	rng       *rand.Rand
	newCarry  float64 // fractions of alerts not yet made
	chgCarry  float64
	lastBurst time.Time
	lastTick  time.Time
}

// SetActivity changes the background alert traffic; it takes effect at
// RunActivity's next tick.
func (s *Server) SetActivity(a Activity) error {
	if err := a.check(); err != nil {
		return fmt.Errorf("emulator: activity: %w", err)
	}
	s.activity.mu.Lock()
	defer s.activity.mu.Unlock()
	s.activity.set = a
	return nil
}

// Activity returns the current activity setting.
func (s *Server) Activity() Activity {
	s.activity.mu.Lock()
	defer s.activity.mu.Unlock()
	return s.activity.set
}

func (s *Server) controlSetActivity(x *exchange) {
	var a Activity
	if !x.decodeControl(&a) {
		return
	}
	if err := s.SetActivity(a); err != nil {
		x.controlError(http.StatusBadRequest, err.Error())
		return
	}
	x.json(http.StatusOK, a)
}

// RunActivity makes the background alert traffic, one tick a second, until
// ctx ends. The traffic follows the current setting (SetActivity, PUT
// /_emulator/activity); with none it idles.
func (s *Server) RunActivity(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.activityTick(s.now())
		}
	}
}

// activityTick makes the traffic due since the last tick.
func (s *Server) activityTick(now time.Time) {
	st := &s.activity
	st.mu.Lock()
	a := st.set
	if st.rng == nil {
		st.rng = rand.New(rand.NewPCG(uint64(seedFromString(s.tenant.ID())), seedMix))
	}
	dt := time.Second
	if !st.lastTick.IsZero() {
		dt = min(max(now.Sub(st.lastTick), 0), time.Minute)
	}
	st.lastTick = now
	st.newCarry += a.AlertsPerMinute * dt.Minutes()
	st.chgCarry += a.UpdatesPerMinute * dt.Minutes()
	newN, chgN := int(st.newCarry), int(st.chgCarry)
	st.newCarry -= float64(newN)
	st.chgCarry -= float64(chgN)
	burst := a.BurstEverySeconds > 0 && a.BurstSize > 0 && now.Sub(st.lastBurst) >= time.Duration(a.BurstEverySeconds)*time.Second
	if burst {
		if st.lastBurst.IsZero() {
			burst = false // the first burst comes one period in
		}
		st.lastBurst = now
	}
	late := 0
	for range newN {
		if st.rng.Float64() < a.LateFraction {
			late++
		}
	}
	lateDelay := time.Duration(a.LateSeconds) * time.Second
	if lateDelay == 0 {
		lateDelay = time.Duration(30+st.rng.IntN(91)) * time.Second
	}
	seed := st.rng.Int64()
	st.mu.Unlock()

	log := func(what string, n int, err error) {
		if err != nil {
			s.log.Warn("emulator: alert activity", "what", what, "err", err)
		} else if n > 0 {
			s.log.Debug("emulator: alert activity", "what", what, "count", n)
		}
	}
	if n := newN - late; n > 0 {
		_, err := s.tenant.AddAlerts(AlertSpec{Count: n, Seed: seed})
		log("new alerts", n, err)
	}
	if late > 0 {
		_, err := s.tenant.AddAlerts(AlertSpec{Count: late, Seed: seed + 1, VisibleAfter: lateDelay})
		log("late alerts", late, err)
	}
	if burst {
		_, err := s.tenant.AddAlerts(AlertSpec{Count: a.BurstSize, Seed: seed + 2, SharedTimestamp: true})
		log("burst", a.BurstSize, err)
	}
	if chgN > 0 && s.tenant.AlertCount() > 0 {
		_, err := s.tenant.ChangeAlerts(AlertChange{Count: chgN, Seed: seed + 3})
		log("changes", chgN, err)
	}
}
