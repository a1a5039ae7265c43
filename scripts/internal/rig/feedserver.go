package rig

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"time"
)

// FeedFiles serves a feed tree (agent/delivery/SPEC.md section 10) as a
// static web server does: each file under Root with a strong ETag of its
// bytes, answering a matching If-None-Match with 304. It is the feed server
// of make e2e (scripts/e2e serve-feed) and of the soak; make fleet uses
// Debian's nginx.
type FeedFiles struct {
	Root string
	// Log, if set, is called once a request with its status and the bytes
	// of the body sent (0 for a 304 or a 404).
	Log func(r *http.Request, status, bodyBytes int)
}

// ETag is the entity tag FeedFiles gives b.
func ETag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}

func (f *FeedFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, n := http.StatusOK, 0
	if f.Log != nil {
		defer func() { f.Log(r, status, n) }()
	}
	b, err := os.ReadFile(filepath.Join(f.Root, filepath.FromSlash(path.Clean("/"+r.URL.Path))))
	if err != nil {
		status = http.StatusNotFound
		http.NotFound(w, r)
		return
	}
	etag := ETag(b)
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		status = http.StatusNotModified
		w.WriteHeader(status)
		return
	}
	n = len(b)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}
