package localapi

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/resolve"
)

// wipeBuf is a byte buffer that zeroes its old array whenever it grows, so
// that wiping the final array leaves no copy of what was written.
type wipeBuf struct{ b []byte }

func (w *wipeBuf) grow(n int) {
	if cap(w.b)-len(w.b) >= n {
		return
	}
	nb := make([]byte, len(w.b), 2*cap(w.b)+n)
	copy(nb, w.b)
	clear(w.b[:cap(w.b)])
	w.b = nb
}

func (w *wipeBuf) write(p ...byte) { w.grow(len(p)); w.b = append(w.b, p...) }

func (w *wipeBuf) wipe() { clear(w.b[:cap(w.b)]) }

// encodeResolve writes the /v1/resolve answer. Everything but the password
// is written as encoding/json writes it (appendCredential); the password by
// apitype.AppendPassword straight into the buffer, with room reserved first
// so that it is never copied by a reallocation.
func encodeResolve(res resolve.Result) *wipeBuf {
	size := 16
	for _, it := range res.Items {
		size += len(it.Name)*2 + 256
		if it.Account != nil {
			size += apitype.PasswordLen(it.Account.Content.Reveal())
			for k, v := range it.Account.Properties {
				size += len(k) + len(v) + 8
			}
		}
	}
	buf := &wipeBuf{b: make([]byte, 0, size)}
	var scratch []byte // a name or an item's fields other than the password
	buf.write([]byte(`{"results":{`)...)
	for i, it := range res.Items {
		if i > 0 {
			buf.write(',')
		}
		scratch = apitype.AppendString(scratch[:0], it.Name)
		buf.write(scratch...)
		buf.write(':')
		if it.Err != nil {
			b, _ := json.Marshal(apitype.ItemError{Error: wireError(it.Err)})
			buf.write(b...)
			continue
		}
		a := it.Account
		meta := appendCredential(scratch[:0], apitype.Credential{
			Username:                a.UserName(),
			Properties:              a.Properties,
			FromCache:               it.FromCache,
			Stale:                   it.Stale,
			CacheAgeMS:              it.CacheAge.Milliseconds(),
			PasswordChangeInProcess: a.PasswordChangeInProcess,
		})
		scratch = meta
		pw := a.Content.Reveal()
		buf.grow(len(`{"password":,`) + apitype.PasswordLen(pw) + len(meta))
		mark := len(buf.b)
		buf.b = append(buf.b, `{"password":`...)
		var err error
		if buf.b, err = apitype.AppendPassword(buf.b, pw); err != nil {
			clear(buf.b[mark:cap(buf.b)])
			buf.b = buf.b[:mark]
			b, _ := json.Marshal(apitype.ItemError{Error: &apitype.Error{Class: apitype.ClassServerError, Message: err.Error(), CorrelationID: a.CorrelationID}})
			buf.write(b...)
			continue
		}
		buf.b = append(buf.b, ',')
		buf.b = append(buf.b, meta[1:]...)
	}
	buf.write([]byte("}}\n")...)
	return buf
}

// appendCredential appends c as json.Marshal writes it (properties in key
// order, "properties" and "stale" omitted when empty), without its
// reflection.
func appendCredential(b []byte, c apitype.Credential) []byte {
	b = append(b, `{"username":`...)
	b = apitype.AppendString(b, c.Username)
	if len(c.Properties) > 0 {
		b = append(b, `,"properties":{`...)
		var arr [16]string
		keys := arr[:0]
		for k := range c.Properties {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = apitype.AppendString(b, k)
			b = append(b, ':')
			b = apitype.AppendString(b, c.Properties[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"from_cache":`...)
	b = strconv.AppendBool(b, c.FromCache)
	if c.Stale {
		b = append(b, `,"stale":true`...)
	}
	b = append(b, `,"cache_age_ms":`...)
	b = strconv.AppendInt(b, c.CacheAgeMS, 10)
	b = append(b, `,"password_change_in_process":`...)
	b = strconv.AppendBool(b, c.PasswordChangeInProcess)
	return append(b, '}')
}
