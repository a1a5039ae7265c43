package secret

import (
	"errors"
	"io"
)

// ErrTooLarge means ReadAll met more than its limit.
var ErrTooLarge = errors.New("secret: input larger than the limit")

// ReadAll reads r to EOF into a new buffer that the caller owns and should
// wipe. Unlike io.ReadAll it leaves no copy behind: whenever the buffer
// grows, the old array is zeroed. hint sizes the first buffer (a
// Content-Length; <= 0 or above max means unknown). More than max bytes is
// ErrTooLarge. On any error the buffer is wiped and nil returned.
func ReadAll(r io.Reader, hint, max int64) ([]byte, error) {
	size := int64(4096)
	if hint > 0 && hint <= max {
		size = hint + 1 // one more, to see EOF without growing
	}
	buf := make([]byte, 0, size)
	lr := io.LimitReader(r, max+1)
	for {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), 2*cap(buf))
			copy(nb, buf)
			clear(buf)
			buf = nb
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			clear(buf)
			return nil, ErrTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			clear(buf)
			return nil, err
		}
	}
}
