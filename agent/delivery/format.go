package delivery

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Version is the first line of every delivery of this format.
const Version = "credagent-delivery/v1"

// versionPrefix starts the first line of every version of the format; a file
// starting with it but naming another version is ErrUnsupported rather than
// ErrMalformed.
const versionPrefix = "credagent-delivery/"

// Limits. A file over MaxBytes, a header over MaxHeaderBytes, a payload over
// MaxPayloadBytes is ErrTooLarge.
const (
	MaxBytes        = 4 << 20
	MaxHeaderBytes  = 4096
	MaxPayloadBytes = MaxBytes - MaxHeaderBytes - 256
	MaxNameBytes    = 128
	MaxIDBytes      = 64
)

// TimeLayout is the only accepted timestamp form: UTC, whole seconds, "Z".
const TimeLayout = "2006-01-02T15:04:05Z"

// Kind is what a delivery carries.
type Kind string

// The kinds of delivery.
const (
	KindApplication Kind = "application" // sealed: certificate chain and private key
	KindGroupKey    Kind = "group-key"   // sealed: a machine group's private key
	KindStore       Kind = "store"       // signed, and sealed when it has a recipient: a CCP store
	KindCredential  Kind = "credential"  // signed, and sealed when it has a recipient: a named account
	KindRevoke      Kind = "revoke"      // signed: removes an object of another kind
)

// Kinds lists every kind, in the order records are loaded at start-up (group
// keys before the applications sealed to them).
var Kinds = []Kind{KindGroupKey, KindApplication, KindStore, KindCredential, KindRevoke}

// Valid reports whether k is one of the kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindApplication, KindGroupKey, KindStore, KindCredential, KindRevoke:
		return true
	}
	return false
}

// Sealed reports whether the payload of kind k is always HPKE-sealed.
func (k Kind) Sealed() bool { return k == KindApplication || k == KindGroupKey }

// Sealable reports whether a delivery of kind k may be sealed: every kind
// but revoke, which has no content. A store or credential delivery is sealed
// when its header names a recipient (a feed requires it, SPEC.md section 10).
func (k Kind) Sealable() bool { return k.Valid() && k != KindRevoke }

// AddressType says whether a delivery is addressed to one machine or to a
// machine group.
type AddressType string

// The address types.
const (
	ToMachine AddressType = "machine"
	ToGroup   AddressType = "group"
)

// Address is who a delivery is for.
type Address struct {
	Type AddressType
	Name string // a machine ID or a group name
}

// Machine addresses the machine with the given machine ID.
func Machine(id string) Address { return Address{ToMachine, id} }

// Group addresses every machine of a group.
func Group(name string) Address { return Address{ToGroup, name} }

func (a Address) String() string { return string(a.Type) + " " + a.Name }

// Object names what a delivery creates, replaces or removes: the sequence
// numbers of a kind, owner and target and of their revocation share one
// space. Objects of different owners are different objects, even with the
// same kind and name.
type Object struct {
	Kind  Kind
	Owner string // "" for an object no owner configured
	Name  string
}

func (o Object) String() string {
	s := string(o.Kind) + " " + strconv.Quote(o.Name)
	if o.Owner != "" {
		s += " of owner " + strconv.Quote(o.Owner)
	}
	return s
}

// Header is the signed, cleartext part of a delivery.
type Header struct {
	ID      string // unique per delivery: [A-Za-z0-9_-]{1,64}
	Kind    Kind
	Revokes Kind   // set only when Kind is KindRevoke
	Target  string // the object's name: AppID, group, store or credential name
	Seq     uint64 // >= 1, strictly increasing per Object
	To      Address
	// Owner is the person or team in the portal who configured the object
	// (SPEC.md section 9); "" for none. Applications, stores and
	// credentials of one owner are resolved only with each other, and
	// only for callers whose policy rule names the owner.
	Owner string
	// Recipient is the key ID (keystore.KeyID) of the P-256 public key the
	// payload is sealed to; set for kinds always sealed, and for a store or
	// credential that is sealed. Empty: the payload is in clear.
	Recipient string
	Created   time.Time // whole seconds, UTC
	Expires   time.Time // zero: never
	// Signer is SignerID of the portal key that signed the delivery.
	Signer string
}

// Sealed reports whether the payload is HPKE-sealed: the header names a
// recipient.
func (h *Header) Sealed() bool { return h.Recipient != "" }

// Object returns the object the delivery is about.
func (h *Header) Object() Object {
	if h.Kind == KindRevoke {
		return Object{h.Revokes, h.Owner, h.Target}
	}
	return Object{h.Kind, h.Owner, h.Target}
}

// Delivery is a parsed delivery. Its fields are not authenticated until
// Verify has succeeded.
type Delivery struct {
	Header
	Payload   []byte // HPKE enc||ciphertext for sealed kinds, JSON otherwise
	Signature []byte

	header   []byte // the exact header bytes that were signed
	verified bool
}

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// isOtherVersion reports whether a first line names another version of
// this format: "credagent-delivery/v" and decimal digits, nothing else.
func isOtherVersion(first string) bool {
	d, ok := strings.CutPrefix(first, versionPrefix+"v")
	if !ok || d == "" || len(d) > 9 {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	return true
}

// Parse decodes a delivery strictly: every field in its place, every value
// in canonical form, nothing before or after. Whatever Parse accepts,
// Marshal gives back byte for byte. Parse does not verify the signature.
func Parse(b []byte) (*Delivery, error) {
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxBytes)
	}
	p := &headerParser{b: b}
	first, ok := p.line()
	if !ok {
		return nil, malformed("no version line")
	}
	if first != Version {
		switch {
		case strings.HasSuffix(first, "\r") || bytes.Contains(b[:min(len(b), MaxHeaderBytes)], []byte("\r\n")):
			return nil, malformed("line ends are CRLF; a delivery's line ends are LF only " +
				"(was the file converted to Windows line ends on the way? copy it as binary)")
		case isOtherVersion(first):
			return nil, fmt.Errorf("%w: %q", ErrUnsupported, first)
		}
		return nil, malformed("not a credagent delivery")
	}
	// The fields are read for their syntax only: each in its place, each
	// value in canonical form. Which fields a kind needs, and what their
	// values may be, is Header.check's (one place for the rules, which
	// Create applies too).
	var h Header
	var err error
	field := func(name string, optional bool, set func(string) error) {
		if err != nil {
			return
		}
		v, present := p.field(name)
		switch {
		case !present && !optional:
			err = malformed("missing or misplaced field %q", name)
		case !present:
		case v == "":
			// Absent and empty would marshal alike.
			err = malformed("field %q is empty", name)
		default:
			if e := set(v); e != nil {
				err = malformed("field %q: %v", name, e)
			}
		}
	}
	text := func(dst *string) func(string) error { return func(v string) error { *dst = v; return nil } }
	timeField := func(dst *time.Time) func(string) error {
		return func(v string) (e error) { *dst, e = parseTime(v); return e }
	}
	field("id", false, text(&h.ID))
	field("kind", false, func(v string) error { h.Kind = Kind(v); return nil })
	field("revokes", true, func(v string) error { h.Revokes = Kind(v); return nil })
	field("target", false, text(&h.Target))
	field("seq", false, func(v string) (e error) { h.Seq, e = parseUint(v); return e })
	field("to", false, func(v string) error {
		t, n, ok := strings.Cut(v, " ")
		if !ok {
			return fmt.Errorf("want \"machine NAME\" or \"group NAME\"")
		}
		h.To = Address{AddressType(t), n}
		return nil
	})
	field("owner", true, text(&h.Owner))
	field("recipient", true, text(&h.Recipient))
	field("created", false, timeField(&h.Created))
	field("expires", true, timeField(&h.Expires))
	field("signer", false, text(&h.Signer))
	var plen uint64
	field("payload", false, func(v string) (e error) { plen, e = parseUint(v); return e })
	if err != nil {
		return nil, err
	}
	if blank, ok := p.line(); !ok || blank != "" {
		return nil, malformed("header does not end with an empty line")
	}
	if p.off > MaxHeaderBytes {
		// Unreachable with values that keep the field rules; a header
		// is malformed, not too large: too-large is for the file and
		// the payload (SPEC §2).
		return nil, malformed("header of %d bytes, limit %d", p.off, MaxHeaderBytes)
	}
	if err := h.check(); err != nil {
		return nil, err
	}
	if plen > MaxPayloadBytes {
		return nil, fmt.Errorf("%w: payload of %d bytes, limit %d", ErrTooLarge, plen, MaxPayloadBytes)
	}
	if (h.Kind == KindRevoke) != (plen == 0) {
		return nil, malformed("payload length %d for kind %s", plen, h.Kind)
	}
	rest := b[p.off:]
	if uint64(len(rest)) < plen {
		return nil, malformed("truncated payload")
	}
	d := &Delivery{Header: h, header: b[:p.off:p.off], Payload: rest[:plen:plen]}
	trailer := rest[plen:]
	const sigPrefix = "\nsignature: "
	if !bytes.HasPrefix(trailer, []byte(sigPrefix)) || !bytes.HasSuffix(trailer, []byte("\n")) || len(trailer) < len(sigPrefix)+1 {
		return nil, malformed("missing or malformed signature line")
	}
	enc := trailer[len(sigPrefix) : len(trailer)-1]
	if len(enc) > 256 {
		return nil, malformed("signature too long")
	}
	sig, err := decodeB64(string(enc))
	if err != nil || len(sig) == 0 {
		return nil, malformed("signature: not canonical base64")
	}
	d.Signature = sig
	return d, nil
}

// check holds the header's rules, for Parse (which reads only syntax) and
// for Create: each field's value, and which fields a kind has.
func (h *Header) check() error {
	if err := checkID(h.ID); err != nil {
		return malformed("id: %v", err)
	}
	if !h.Kind.Valid() {
		return malformed("unknown kind %q", h.Kind)
	}
	if (h.Kind == KindRevoke) != (h.Revokes != "") {
		return malformed("revokes %q with kind %s: only a revoke delivery has it, and it must", h.Revokes, h.Kind)
	}
	if h.Revokes == KindRevoke || (h.Revokes != "" && !h.Revokes.Valid()) {
		return malformed("cannot revoke kind %q", h.Revokes)
	}
	if err := checkName(h.Target); err != nil {
		return malformed("target: %v", err)
	}
	if h.Seq == 0 {
		return malformed("seq must be at least 1")
	}
	if h.To.Type != ToMachine && h.To.Type != ToGroup {
		return malformed("to: bad address type %q", h.To.Type)
	}
	if err := checkName(h.To.Name); err != nil {
		return malformed("to: %v", err)
	}
	if h.Owner != "" {
		if err := checkName(h.Owner); err != nil {
			return malformed("owner: %v", err)
		}
	}
	// A group key belongs to the machine group, not to an owner.
	if h.Owner != "" && (h.Kind == KindGroupKey || h.Revokes == KindGroupKey) {
		return malformed("a group key has no owner")
	}
	switch {
	case h.Kind.Sealed() || (h.Recipient != "" && h.Kind.Sealable()):
		if err := checkKeyID(h.Recipient); err != nil {
			return malformed("recipient: %v", err)
		}
	case h.Recipient != "":
		return malformed("recipient set on unsealed kind %s", h.Kind)
	}
	// A group key is sealed to one machine's key, never to a group.
	if (h.Kind == KindGroupKey || h.Revokes == KindGroupKey) && h.To.Type != ToMachine {
		return malformed("a group key is delivered to a machine, not a group")
	}
	if !canonicalTime(h.Created) || (!h.Expires.IsZero() && !canonicalTime(h.Expires)) {
		return malformed("times must be UTC whole seconds")
	}
	if !h.Expires.IsZero() && !h.Expires.After(h.Created) {
		return malformed("expires is not after created")
	}
	if err := checkKeyID(h.Signer); err != nil {
		return malformed("signer: %v", err)
	}
	return nil
}

// Marshal returns the delivery's bytes, exactly as Parse read them.
func (d *Delivery) Marshal() []byte {
	h := marshalHeader(&d.Header, len(d.Payload))
	var b bytes.Buffer
	b.Grow(len(h) + len(d.Payload) + 128)
	b.Write(h)
	b.Write(d.Payload)
	b.WriteString("\nsignature: ")
	b.WriteString(b64.EncodeToString(d.Signature))
	b.WriteByte('\n')
	return b.Bytes()
}

func marshalHeader(h *Header, payloadLen int) []byte {
	var b bytes.Buffer
	f := func(name, v string) { b.WriteString(name + ": " + v + "\n") }
	b.WriteString(Version + "\n")
	f("id", h.ID)
	f("kind", string(h.Kind))
	if h.Kind == KindRevoke {
		f("revokes", string(h.Revokes))
	}
	f("target", h.Target)
	f("seq", strconv.FormatUint(h.Seq, 10))
	f("to", h.To.String())
	if h.Owner != "" {
		f("owner", h.Owner)
	}
	if h.Recipient != "" {
		f("recipient", h.Recipient)
	}
	f("created", h.Created.UTC().Format(TimeLayout))
	if !h.Expires.IsZero() {
		f("expires", h.Expires.UTC().Format(TimeLayout))
	}
	f("signer", h.Signer)
	f("payload", strconv.Itoa(payloadLen))
	b.WriteByte('\n')
	return b.Bytes()
}

type headerParser struct {
	b   []byte
	off int
}

// line returns the next LF-terminated line within the header limit.
func (p *headerParser) line() (string, bool) {
	rest := p.b[p.off:]
	if len(rest) > MaxHeaderBytes {
		rest = rest[:MaxHeaderBytes]
	}
	i := bytes.IndexByte(rest, '\n')
	if i < 0 {
		return "", false
	}
	p.off += i + 1
	return string(rest[:i]), true
}

// field consumes the next line if it is "name: value".
func (p *headerParser) field(name string) (string, bool) {
	save := p.off
	l, ok := p.line()
	if !ok {
		return "", false
	}
	v, found := strings.CutPrefix(l, name+": ")
	if !found {
		p.off = save
		return "", false
	}
	return v, true
}

func parseUint(v string) (uint64, error) {
	if v == "" || len(v) > 20 || (len(v) > 1 && v[0] == '0') {
		return 0, fmt.Errorf("not a canonical decimal")
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, fmt.Errorf("not a canonical decimal")
		}
	}
	return strconv.ParseUint(v, 10, 64)
}

func parseTime(v string) (time.Time, error) {
	t, err := time.Parse(TimeLayout, v)
	if err != nil || t.Format(TimeLayout) != v {
		return time.Time{}, fmt.Errorf("want a time like %s", TimeLayout)
	}
	return t, nil
}

func canonicalTime(t time.Time) bool {
	return t.Location() == time.UTC && t.Nanosecond() == 0 && t.Year() >= 2000 && t.Year() <= 9999
}

// checkID accepts 1 to 64 of [A-Za-z0-9_-].
func checkID(v string) error {
	if len(v) == 0 || len(v) > MaxIDBytes {
		return fmt.Errorf("length %d, want 1 to %d", len(v), MaxIDBytes)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("character %q not allowed", c)
		}
	}
	return nil
}

// CheckName is the rule for a NAME (SPEC section 2): a target, a group, a
// store. Config uses it for inbox.groups.
func CheckName(v string) error { return checkName(v) }

// checkName accepts 1 to 128 printable ASCII characters (space allowed
// inside, not at either end).
func checkName(v string) error {
	if len(v) == 0 || len(v) > MaxNameBytes {
		return fmt.Errorf("length %d, want 1 to %d", len(v), MaxNameBytes)
	}
	if v[0] == ' ' || v[len(v)-1] == ' ' {
		return fmt.Errorf("leading or trailing space")
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return fmt.Errorf("character %q not allowed", v[i])
		}
	}
	return nil
}

// checkKeyID accepts exactly 32 lowercase hex digits.
func checkKeyID(v string) error {
	if len(v) != 32 {
		return fmt.Errorf("want 32 lowercase hex digits")
	}
	for i := 0; i < len(v); i++ {
		if !(v[i] >= '0' && v[i] <= '9' || v[i] >= 'a' && v[i] <= 'f') {
			return fmt.Errorf("want 32 lowercase hex digits")
		}
	}
	return nil
}
