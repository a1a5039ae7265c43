package localapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"testing"

	"github.com/credagent/credagent/agent/localapi"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/rs/zerolog"
)

// TestStatusRuntimeOnlyForPrivileged: the runtime figures of /v1/status
// (goroutines, heap) go to root or the agent's own user, not to others.
func TestStatusRuntimeOnlyForPrivileged(t *testing.T) {
	other := uint32(os.Getuid() + 4242)
	if os.Getuid() == 0 {
		other = 4242
	}
	srv := localapi.NewServer(localapi.Options{Resolver: noResolver{}, Log: zerolog.Nop()})
	for _, tt := range []struct {
		name string
		id   *localsock.Identity
		want bool
	}{
		{"agent's own user", &localsock.Identity{UID: uint32(os.Getuid()), Verified: true}, true},
		{"root", &localsock.Identity{UID: 0, Verified: true}, true},
		{"root, not verified", &localsock.Identity{UID: 0}, false},
		{"another user", &localsock.Identity{UID: other, GID: other, Verified: true}, false},
		{"Windows user", &localsock.Identity{SID: "S-1-5-21-1-2-3-1001", Verified: true}, false},
		{"Windows SYSTEM", &localsock.Identity{SID: localsock.SIDLocalSystem, Verified: true}, true},
		{"Windows administrator", &localsock.Identity{SID: "S-1-5-21-1-2-3-500", GroupSIDs: []string{localsock.SIDAdministrators}, Verified: true}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "agent's own user" && runtime.GOOS == "windows" {
				t.Skip("the agent's own uid is a Unix notion; on Windows privilege is SYSTEM or Administrators, by SID (rows below)")
			}
			req := httptest.NewRequest(http.MethodGet, "/v1/status", nil)
			req = req.WithContext(localsock.WithIdentity(context.Background(), tt.id))
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var st apitype.Status
			if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
				t.Fatal(err)
			}
			if got := st.Runtime != nil; got != tt.want {
				t.Fatalf("runtime figures given: %v, want %v", got, tt.want)
			}
			if st.Runtime != nil && (st.Runtime.Goroutines < 1 || st.Runtime.HeapInuseBytes == 0 || st.Runtime.HeapObjects == 0 || st.Runtime.StackBytes == 0) {
				t.Errorf("runtime figures %+v", *st.Runtime)
			}
		})
	}
}

// noResolver resolves nothing and grants nothing: the test asks only for
// the status.
type noResolver struct{}

func (noResolver) Resolve(context.Context, *localsock.Identity, resolve.Request) resolve.Result {
	panic("not called")
}

func (noResolver) Admit(*localsock.Identity, resolve.Op) *resolve.Error { return nil }

func (noResolver) Grants(*localsock.Identity, string, string) bool { return false }
