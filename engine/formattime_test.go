package engine_test

import (
	"testing"
	"time"

	"github.com/personad/personad/engine"
)

// TestFormatTime: milliseconds always, and every finer digit a time
// carries, so that a projection's times read back as the fold saw them.
func TestFormatTime(t *testing.T) {
	t0 := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	tests := []struct {
		at   time.Time
		want string
	}{
		{t0, "2024-03-15T18:30:00.000Z"},
		{t0.Add(598 * time.Millisecond), "2024-03-15T18:30:00.598Z"},
		{t0.Add(400 * time.Microsecond), "2024-03-15T18:30:00.0004Z"},
		{t0.Add(123456 * time.Microsecond), "2024-03-15T18:30:00.123456Z"},
		{t0.Add(7), "2024-03-15T18:30:00.000000007Z"},
		{t0.In(time.FixedZone("x", 3600)).Add(time.Microsecond), "2024-03-15T18:30:00.000001Z"},
	}
	for _, tt := range tests {
		got := engine.FormatTime(tt.at)
		if got != tt.want {
			t.Errorf("FormatTime(%v) = %s, want %s", tt.at, got, tt.want)
		}
		back, err := time.Parse(time.RFC3339Nano, got)
		if err != nil || !back.Equal(tt.at) {
			t.Errorf("%s parses as %v, %v; want %v", got, back, err, tt.at)
		}
	}
}
