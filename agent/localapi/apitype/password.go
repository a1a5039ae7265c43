package apitype

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrNotUTF8 means a password is not valid UTF-8 and cannot travel as a JSON
// string without being altered.
var ErrNotUTF8 = errors.New("apitype: password is not valid UTF-8")

const hexDigits = "0123456789abcdef"

// AppendPassword appends pw to dst as a JSON string. It writes every byte
// itself, so the only copies are in dst. It fails on invalid UTF-8 rather
// than replacing bytes, which would hand out a wrong password.
func AppendPassword(dst, pw []byte) ([]byte, error) {
	if !utf8.Valid(pw) {
		return dst, ErrNotUTF8
	}
	dst = append(dst, '"')
	for _, c := range pw {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20 || c == 0x7f:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"'), nil
}

// PasswordLen returns an upper bound of AppendPassword's output for pw.
func PasswordLen(pw []byte) int { return 2 + 6*len(pw) }

// ErrBadString means DecodePassword was given something other than a JSON
// string.
var ErrBadString = errors.New("apitype: malformed JSON string")

// DecodePassword decodes the JSON string literal lit (quotes included) into
// a new buffer that the caller owns and should wipe.
func DecodePassword(lit []byte) ([]byte, error) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return nil, ErrBadString
	}
	s := lit[1 : len(lit)-1]
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c == '"' {
			clear(out)
			return nil, ErrBadString
		}
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(s) {
			clear(out)
			return nil, ErrBadString
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
				clear(out)
				return nil, ErrBadString
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
			clear(out)
			return nil, ErrBadString
		}
	}
	if !utf8.Valid(out) {
		clear(out)
		return nil, ErrNotUTF8
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
