package delivery

import (
	"errors"
	"testing"
	"time"
)

// TestHeaderRulesInOnePlace: the header rules live in Header.check, which
// both Create and Parse apply. Each header here breaks one rule; Create
// refuses it, and so does Parse when a portal signs those bytes anyway,
// both as malformed.
func TestHeaderRulesInOnePlace(t *testing.T) {
	t.Parallel()
	toMe := Machine(testMachine)
	gk := func() Content { return &GroupKey{PrivateKey: secretOf(groupKey.Bytes())} }
	tests := []struct {
		name    string
		content func() Content
		sealed  bool
		bad     func(h *Header)
	}{
		{"id with a space", func() Content { return testStore() }, false, func(h *Header) { h.ID = "v 1" }},
		{"target with a trailing space", func() Content { return testStore() }, false, func(h *Header) { h.Target = "prod " }},
		{"seq 0", func() Content { return testStore() }, false, func(h *Header) { h.Seq = 0 }},
		{"unknown address type", func() Content { return testStore() }, false, func(h *Header) { h.To = Address{"team", "x"} }},
		{"owner with a control character", func() Content { return testStore() }, false, func(h *Header) { h.Owner = "team\x7fa" }},
		{"group key with an owner", gk, true, func(h *Header) { h.Owner = "team-a" }},
		{"group key to a group", gk, true, func(h *Header) { h.To = Group(testGroup) }},
		{"expires before created", func() Content { return testStore() }, false, func(h *Header) { h.Expires = h.Created.Add(-time.Hour) }},
		{"expires equal to created", func() Content { return testStore() }, false, func(h *Header) { h.Expires = h.Created }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := hdr("v-rule-1", "prod", 1, toMe)
			if _, ok := tt.content().(*GroupKey); ok {
				h.Target = testGroup
			}
			bad := h
			tt.bad(&bad)
			rcpt := machineKey.PublicKey()
			if !tt.sealed {
				rcpt = nil
			}
			if _, err := Create(bad, tt.content(), rcpt, edSigner); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Create: %v, want malformed", err)
			}
			d := mk(t, h, tt.content(), rcpt, edSigner)
			kind, revokes, recipient, signer := d.Kind, d.Revokes, d.Recipient, d.Signer
			d.Header = bad
			d.Kind, d.Revokes, d.Recipient, d.Signer = kind, revokes, recipient, signer
			b := resign(t, d, edSigner).Marshal()
			if _, err := Parse(b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse: %v, want malformed", err)
			}
		})
	}
}
