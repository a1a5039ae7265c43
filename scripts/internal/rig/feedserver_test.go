package rig

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestFeedFiles(t *testing.T) {
	root := t.TempDir()
	body := []byte("credagent-feed/v1\n...")
	if err := os.MkdirAll(filepath.Join(root, "machine", "m1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "machine", "m1", "manifest"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	// A file next to the root, which no path may reach.
	if err := os.WriteFile(filepath.Join(filepath.Dir(root), "secret"), []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, ifNoneMatch string
		status, logged          int
		wantBody                bool
	}{
		{"file", "/machine/m1/manifest", "", http.StatusOK, len(body), true},
		{"same ETag: 304", "/machine/m1/manifest", ETag(body), http.StatusNotModified, 0, false},
		{"other ETag", "/machine/m1/manifest", ETag([]byte("older")), http.StatusOK, len(body), true},
		{"missing", "/machine/m2/manifest", "", http.StatusNotFound, 0, false},
		{"no climbing out of the root", "/../secret", "", http.StatusNotFound, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotStatus, gotBytes int
			h := &FeedFiles{Root: root, Log: func(_ *http.Request, status, n int) { gotStatus, gotBytes = status, n }}
			req := httptest.NewRequest(http.MethodGet, "https://feed.example"+tt.path, nil)
			if tt.ifNoneMatch != "" {
				req.Header.Set("If-None-Match", tt.ifNoneMatch)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tt.status || gotStatus != tt.status || gotBytes != tt.logged {
				t.Errorf("status %d (logged %d, %d bytes), want %d (%d bytes)", w.Code, gotStatus, gotBytes, tt.status, tt.logged)
			}
			if got := w.Body.String() == string(body); got != tt.wantBody {
				t.Errorf("body %q", w.Body.String())
			}
			if tt.status != http.StatusNotFound && w.Header().Get("ETag") != ETag(body) {
				t.Errorf("ETag %q, want %q", w.Header().Get("ETag"), ETag(body))
			}
		})
	}
}
