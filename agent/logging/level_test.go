package logging

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestSetLevel: a new level applies at once to loggers already derived
// from Log (as each part of the agent holds its own), in both directions,
// and never to the audit stream.
func TestSetLevel(t *testing.T) {
	var out bytes.Buffer
	ls, err := New(Options{Level: "warn", Format: "json"}, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	part := ls.Log.With().Str("component", "ccp").Logger() // handed out before the change
	steps := []struct {
		level     string
		wantDebug bool
		wantInfo  bool
	}{
		{"warn", false, false},
		{"debug", true, true},
		{"info", false, true},
		{"error", false, false},
	}
	for _, st := range steps {
		if err := ls.SetLevel(st.level); err != nil {
			t.Fatal(err)
		}
		if got := ls.Level().String(); got != st.level {
			t.Errorf("Level() = %s, want %s", got, st.level)
		}
		out.Reset()
		part.Debug().Msg("d-" + st.level)
		part.Info().Msg("i-" + st.level)
		ls.Audit.Log().Str("name", "sap").Msg("")
		s := out.String()
		if strings.Contains(s, "d-"+st.level) != st.wantDebug || strings.Contains(s, "i-"+st.level) != st.wantInfo {
			t.Errorf("level %s: wrote %q (want debug %v, info %v)", st.level, s, st.wantDebug, st.wantInfo)
		}
		if !strings.Contains(s, `"stream":"audit"`) {
			t.Errorf("level %s: the audit record was dropped: %q", st.level, s)
		}
	}
	if err := ls.SetLevel("loud"); err == nil {
		t.Error("SetLevel took an unknown level")
	}
	if ls.Level() != zerolog.ErrorLevel {
		t.Errorf("a refused level changed the level to %v", ls.Level())
	}
}
