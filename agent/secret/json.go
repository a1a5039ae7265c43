package secret

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrBadJSONString means UnquoteJSON was given something other than a JSON
// string literal.
var ErrBadJSONString = errors.New("secret: malformed JSON string")

// UnquoteJSON decodes the JSON string literal lit (quotes included) into a
// new buffer that the caller owns and should wipe, without passing the value
// through a Go string or encoding/json's pooled buffers, neither of which can
// be wiped. It decodes as encoding/json does: invalid UTF-8 and lone
// surrogates become U+FFFD. On error the partial buffer is wiped.
func UnquoteJSON(lit []byte) ([]byte, error) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return nil, ErrBadJSONString
	}
	s := lit[1 : len(lit)-1]
	out := make([]byte, 0, len(s))
	fail := func() ([]byte, error) {
		clear(out[:cap(out)])
		return nil, ErrBadJSONString
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return fail()
			}
			e := s[i+1]
			i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(s[i:])
				if !ok {
					return fail()
				}
				i += 4
				if utf16.IsSurrogate(r) {
					r2 := utf8.RuneError
					if len(s) >= i+6 && s[i] == '\\' && s[i+1] == 'u' {
						if x, ok := hex4(s[i+2:]); ok {
							if d := utf16.DecodeRune(r, x); d != utf8.RuneError {
								r2 = d
								i += 6
							}
						}
					}
					r = r2
				}
				out = utf8.AppendRune(out, r)
			default:
				return fail()
			}
		case c < 0x20 || c == '"':
			return fail()
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, s[i:i+size]...)
			}
			i += size
		}
	}
	return out, nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}
