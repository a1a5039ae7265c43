package localapi_test

import (
	"errors"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/credagent/credagent/platform/localsock"
	"github.com/credagent/credagent/platform/localsock/localsocktest"
)

// TestOtherUserRefused runs a client as nobody. When nobody may reach the
// socket (group nogroup), the policy refuses it with a 403 and an audit
// record; when it may not (group root), the kernel refuses the connection.
func TestOtherUserRefused(t *testing.T) {
	for _, tt := range []struct {
		group    string
		wantExit int
	}{{"nogroup", 0}, {"root", 3}} {
		t.Run(tt.group, func(t *testing.T) {
			h := start(t, setup{listen: func(t *testing.T) (string, localsock.ListenOptions) {
				return filepath.Join(localsocktest.PublicDir(t), "run", "agent.sock"), localsock.ListenOptions{Group: tt.group}
			}})
			out, err := localsocktest.RunAs(t, localsocktest.Nobody, localsocktest.Nobody, []string{clientEnv + "=" + h.path}, "-test.run=^$")
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantExit {
				t.Fatalf("child exit %d, want %d: %s", code, tt.wantExit, out)
			}
			recs := h.auditRecords(t)
			if tt.wantExit != 0 {
				if len(recs) != 0 {
					t.Errorf("audit records for a refused connection: %v", recs)
				}
				return
			}
			if len(recs) != 1 {
				t.Fatalf("%d audit records, want 1", len(recs))
			}
			r := recs[0]
			// The caller is refused before its body is read: the record
			// names the caller, not the credentials it asked for.
			if r["outcome"] != "refused" || r["error_class"] != "forbidden" || r["caller_uid"] != float64(localsocktest.Nobody) || r["caller_user"] != "nobody" || r["credential"] != "" {
				t.Errorf("audit record %v", r)
			}
		})
	}
}
