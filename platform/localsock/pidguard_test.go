package localsock

import (
	"testing"
	"time"
)

func TestCreatedInTime(t *testing.T) {
	accepted := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name    string
		created time.Time
		want    bool
	}{
		{"created long before the connection", accepted.Add(-time.Hour), true},
		{"created at the moment of accept", accepted, true},
		{"created after accept: a recycled PID", accepted.Add(time.Millisecond), false},
		{"created a minute later, when a lazy identification would run", accepted.Add(time.Minute), false},
	} {
		if got := createdInTime(c.created, accepted); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
