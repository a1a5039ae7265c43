package secret

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// spyReader hands out its data in small pieces and remembers every buffer it
// wrote into, so the test can check that grown-out arrays were zeroed.
type spyReader struct {
	r    io.Reader
	seen [][]byte
}

func (s *spyReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p[:min(len(p), 7)])
	s.seen = append(s.seen, p[:n])
	return n, err
}

func TestReadAll(t *testing.T) {
	long := strings.Repeat("Sap-Pr0d!pass ", 1000) // 14,000 bytes: the buffer grows
	tests := []struct {
		name      string
		in        string
		hint, max int64
		wantErr   error
	}{
		{"empty", "", -1, 100, nil},
		{"exact hint", "hello", 5, 100, nil},
		{"wrong hint", "hello world", 3, 100, nil},
		{"grows", long, -1, 1 << 20, nil},
		{"at the limit", "12345", -1, 5, nil},
		{"over the limit", "123456", -1, 5, ErrTooLarge},
		{"over the limit with a hint", long, int64(len(long)), 100, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spy := &spyReader{r: strings.NewReader(tt.in)}
			got, err := ReadAll(spy, tt.hint, tt.max)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && string(got) != tt.in {
				t.Fatalf("read %d bytes, want %d", len(got), len(tt.in))
			}
			// Every buffer but the final one must hold zeros only; on
			// error, the final one too.
			for _, b := range spy.seen {
				if len(b) == 0 || (err == nil && sameArray(b, got)) {
					continue
				}
				if bytes.ContainsFunc(b, func(r rune) bool { return r != 0 }) {
					t.Fatalf("a buffer left behind still holds %q", b)
				}
			}
		})
	}
	if _, err := ReadAll(iotest.ErrReader(io.ErrClosedPipe), -1, 10); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("read error: %v", err)
	}
}

// sameArray reports whether a and b share their backing array. Both were
// cut from the reader's buffer up to its capacity, so the arrays' last
// elements are the same exactly when the arrays are.
func sameArray(a, b []byte) bool {
	if cap(a) == 0 || cap(b) == 0 {
		return false
	}
	return &a[:cap(a)][cap(a)-1] == &b[:cap(b)][cap(b)-1]
}
