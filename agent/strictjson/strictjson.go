// Package strictjson decodes untrusted JSON so that every reader of the
// same bytes reads the same thing: object keys match a struct's JSON names
// exactly (encoding/json matches them ignoring case), a key may appear once
// per object, nothing follows the value, and, when asked, null is refused.
//
// Go 1.26's encoding/json/v2 has these rules, but only behind
// GOEXPERIMENT=jsonv2; this is a small check over encoding/json's token
// stream, run before encoding/json decodes the same bytes.
package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// MaxDepth bounds the nesting of objects and arrays.
const MaxDepth = 16

// Options adjust Decode.
type Options struct {
	// NoNull refuses null anywhere: encoding/json would read it as "absent"
	// for some types and as a zero value for others.
	NoNull bool
}

// Decode decodes data, one JSON value with optional whitespace around it,
// into v (a pointer) under the rules above. Errors name the offending key.
func Decode(data []byte, v any, o Options) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("strictjson: Decode needs a non-nil pointer")
	}
	if err := Check(data, rv.Type().Elem(), o); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	return nil
}

// Check checks data against the rules for a value of type t, without
// decoding it.
func Check(data []byte, t reflect.Type, o Options) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	c := checker{dec: dec, o: o}
	if err := c.value(t, 0, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

type checker struct {
	dec *json.Decoder
	o   Options
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	rawMessageType      = reflect.TypeFor[json.RawMessage]()
)

// opaque reports whether t decodes itself, or takes any shape: its keys
// are only checked for duplicates.
func opaque(t reflect.Type) bool {
	if t == nil || t.Kind() == reflect.Interface || t == rawMessageType {
		return true
	}
	pt := reflect.PointerTo(t)
	return t.Implements(unmarshalerType) || pt.Implements(unmarshalerType) ||
		t.Implements(textUnmarshalerType) || pt.Implements(textUnmarshalerType)
}

// value checks the next value, to be decoded into t (nil: any).
func (c *checker) value(t reflect.Type, depth int, path string) error {
	if depth > MaxDepth {
		return errors.New("nested too deeply")
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && opaque(t) {
		t = nil
	}
	tok, err := c.dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		return c.object(t, depth, path)
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; c.dec.More(); i++ {
			if err := c.value(elem, depth+1, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		_, err := c.dec.Token()
		return err
	case nil:
		if c.o.NoNull {
			return fmt.Errorf("%snull is not allowed", at(path))
		}
	}
	return nil
}

func (c *checker) object(t reflect.Type, depth int, path string) error {
	var names map[string]reflect.Type
	var elem reflect.Type
	if t != nil {
		switch t.Kind() {
		case reflect.Struct:
			names = fieldsOf(t)
		case reflect.Map:
			elem = t.Elem()
		}
	}
	seen := map[string]bool{}
	for c.dec.More() {
		kt, err := c.dec.Token()
		if err != nil {
			return err
		}
		k, _ := kt.(string)
		if seen[k] {
			return fmt.Errorf("%sduplicate key %q", at(path), k)
		}
		seen[k] = true
		sub := elem
		if names != nil {
			ft, ok := names[k]
			if !ok {
				return fmt.Errorf("%sunknown key %q%s", at(path), k, hint(names, k))
			}
			sub = ft
		}
		if err := c.value(sub, depth+1, join(path, k)); err != nil {
			return err
		}
	}
	_, err := c.dec.Token()
	return err
}

// fieldsOf returns the JSON names of t's fields, as encoding/json would
// see them (tags, embedded structs), each with its type.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous && name == "" {
			et := ft
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				for k, v := range fieldsOf(et) {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = ft
	}
	return out
}

// hint names the field a key differs from only in case.
func hint(names map[string]reflect.Type, k string) string {
	for n := range names {
		if strings.EqualFold(n, k) {
			return fmt.Sprintf(" (keys match exactly: %q)", n)
		}
	}
	return ""
}

func at(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}
