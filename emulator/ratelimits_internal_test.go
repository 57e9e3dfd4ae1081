package emulator

import (
	"testing"
	"time"
)

func TestTimeSpanFormatsLikeDotNet(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Minute:             "00:01:00",
		time.Hour:               "01:00:00",
		time.Second:             "00:00:01",
		time.Minute / 7:         "00:00:08.5714285",
		25 * time.Hour:          "1.01:00:00",
		90 * time.Millisecond:   "00:00:00.0900000",
		time.Hour / 60 / 60 / 2: "00:00:00.5000000",
	} {
		if got := timeSpan(d); got != want {
			t.Errorf("timeSpan(%v) = %q, want %q", d, got, want)
		}
	}
}
