package delivery

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/strictjson"
)

// FeedVersion is the first line of every feed manifest of this format.
const FeedVersion = "credagent-feed/v1"

const feedVersionPrefix = "credagent-feed/"

// Feed limits. A manifest over MaxManifestBytes, or listing more than
// MaxManifestEntries deliveries, is ErrTooLarge.
const (
	MaxManifestBytes   = 1 << 20
	MaxManifestEntries = 2048
)

// ManifestName is the file name of a feed directory's manifest.
const ManifestName = "manifest"

// manifestSignatureContext separates manifest signatures from delivery
// signatures made with the same portal key.
const manifestSignatureContext = "credagent feed manifest signature v1\x00"

// ManifestEntry lists one current delivery of a feed directory.
type ManifestEntry struct {
	ID      string
	Kind    Kind
	Revokes Kind // set only when Kind is KindRevoke
	Target  string
	Owner   string // the object's owner (SPEC.md section 9); "" for none
	Seq     uint64
	Size    int64  // bytes of the delivery file
	SHA256  string // of the delivery file, 64 lowercase hex digits
}

// Object returns the object the listed delivery is about.
func (e *ManifestEntry) Object() Object {
	if e.Kind == KindRevoke {
		return Object{Kind: e.Revokes, Owner: e.Owner, Name: e.Target}
	}
	return Object{Kind: e.Kind, Owner: e.Owner, Name: e.Target}
}

// EntryFor lists a delivery whose marshalled bytes are raw.
func EntryFor(d *Delivery, raw []byte) ManifestEntry {
	sum := sha256.Sum256(raw)
	return ManifestEntry{ID: d.ID, Kind: d.Kind, Revokes: d.Revokes, Target: d.Target, Owner: d.Owner, Seq: d.Seq,
		Size: int64(len(raw)), SHA256: hex.EncodeToString(sum[:])}
}

// Matches reports whether raw are the bytes the entry lists.
func (e *ManifestEntry) Matches(raw []byte) bool {
	sum := sha256.Sum256(raw)
	return int64(len(raw)) == e.Size && hex.EncodeToString(sum[:]) == e.SHA256
}

// Describes reports whether d's header is the one the entry lists.
func (e *ManifestEntry) Describes(d *Delivery) bool {
	return d.ID == e.ID && d.Kind == e.Kind && d.Revokes == e.Revokes && d.Target == e.Target && d.Owner == e.Owner && d.Seq == e.Seq
}

// Manifest is a signed list of the current deliveries of one feed
// directory: one machine's or one group's. Its fields are not authentic
// until Verify has succeeded.
type Manifest struct {
	To         Address
	Seq        uint64
	Created    time.Time
	Expires    time.Time
	Signer     string
	Deliveries []ManifestEntry

	header    []byte
	body      []byte
	Signature []byte
	verified  bool
}

// FeedDir is the directory of address a within a feed tree, relative to
// its base, with "/" separators: "machine/NAME" or "group/NAME". A name of
// only A-Z a-z 0-9 _ - is used as it is; any other name is written as "~"
// followed by the lowercase hex of its bytes, so that no name can climb out
// of the tree or mean something else to a web server or a file system.
func FeedDir(a Address) string {
	return string(a.Type) + "/" + feedSegment(a.Name)
}

func feedSegment(name string) string {
	if checkID(name) == nil && len(name) <= MaxNameBytes {
		return name
	}
	return "~" + hex.EncodeToString([]byte(name))
}

// FeedFile is the path of a delivery with the given ID within address a's
// feed directory.
func FeedFile(a Address, id string) string { return path.Join(FeedDir(a), id+".delivery") }

// CreateManifest builds and signs a manifest. The entries are sorted into
// the order of SPEC.md: by kind (Kinds order), then target, then owner
// (none first).
func CreateManifest(to Address, seq uint64, created, expires time.Time, entries []ManifestEntry, signer crypto.Signer) (*Manifest, error) {
	m := &Manifest{To: to, Seq: seq, Created: created.UTC().Truncate(time.Second), Expires: expires.UTC().Truncate(time.Second)}
	m.Deliveries = append([]ManifestEntry(nil), entries...)
	sortEntries(m.Deliveries)
	var err error
	if m.Signer, err = SignerID(signer.Public()); err != nil {
		return nil, err
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	m.body = m.marshalBody()
	m.header = manifestHeader(m.Signer, len(m.body))
	if len(m.header)+len(m.body)+256 > MaxManifestBytes {
		return nil, fmt.Errorf("%w: manifest of %d bytes", ErrTooLarge, len(m.body))
	}
	if m.Signature, err = sign(signer, manifestMessage(m.header, m.body)); err != nil {
		return nil, fmt.Errorf("delivery: sign manifest: %w", err)
	}
	return m, nil
}

func sortEntries(es []ManifestEntry) {
	rank := func(k Kind) int {
		for i, x := range Kinds {
			if x == k {
				return i
			}
		}
		return len(Kinds)
	}
	// Insertion sort: manifests are short and this keeps the order stable.
	for i := 1; i < len(es); i++ {
		for j := i; j > 0; j-- {
			a, b := &es[j-1], &es[j]
			if rank(a.Kind) < rank(b.Kind) || (a.Kind == b.Kind && (a.Target < b.Target || (a.Target == b.Target && a.Owner <= b.Owner))) {
				break
			}
			es[j-1], es[j] = es[j], es[j-1]
		}
	}
}

// Marshal returns the manifest's bytes, exactly as ParseManifest read them.
func (m *Manifest) Marshal() []byte {
	body := m.body
	if body == nil {
		body = m.marshalBody()
	}
	h := manifestHeader(m.Signer, len(body))
	var b bytes.Buffer
	b.Write(h)
	b.Write(body)
	b.WriteString("\nsignature: ")
	b.WriteString(b64.EncodeToString(m.Signature))
	b.WriteByte('\n')
	return b.Bytes()
}

func manifestHeader(signer string, bodyLen int) []byte {
	return []byte(FeedVersion + "\nsigner: " + signer + "\nbody: " + strconv.Itoa(bodyLen) + "\n\n")
}

func manifestMessage(header, body []byte) []byte {
	sum := sha256.Sum256(body)
	m := make([]byte, 0, len(manifestSignatureContext)+len(header)+len(sum))
	m = append(m, manifestSignatureContext...)
	m = append(m, header...)
	return append(m, sum[:]...)
}

// jsonString writes s, printable ASCII, as a JSON string escaping only the
// quote and the backslash: the one encoding SPEC.md allows.
func jsonString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

// marshalBody is the canonical body: compact JSON, keys in the order of
// SPEC.md section 10.
func (m *Manifest) marshalBody() []byte {
	var b bytes.Buffer
	b.WriteString(`{"to":`)
	jsonString(&b, m.To.String())
	b.WriteString(`,"seq":` + strconv.FormatUint(m.Seq, 10))
	b.WriteString(`,"created":"` + m.Created.UTC().Format(TimeLayout) + `"`)
	b.WriteString(`,"expires":"` + m.Expires.UTC().Format(TimeLayout) + `"`)
	b.WriteString(`,"deliveries":[`)
	for i, e := range m.Deliveries {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":`)
		jsonString(&b, e.ID)
		b.WriteString(`,"kind":`)
		jsonString(&b, string(e.Kind))
		if e.Kind == KindRevoke {
			b.WriteString(`,"revokes":`)
			jsonString(&b, string(e.Revokes))
		}
		b.WriteString(`,"target":`)
		jsonString(&b, e.Target)
		if e.Owner != "" {
			b.WriteString(`,"owner":`)
			jsonString(&b, e.Owner)
		}
		b.WriteString(`,"seq":` + strconv.FormatUint(e.Seq, 10))
		b.WriteString(`,"size":` + strconv.FormatInt(e.Size, 10))
		b.WriteString(`,"sha256":"` + e.SHA256 + `"}`)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// check validates a manifest's values (SPEC.md section 10.2).
func (m *Manifest) check() error {
	if m.To.Type != ToMachine && m.To.Type != ToGroup {
		return malformed("manifest: to: bad address type %q", m.To.Type)
	}
	if err := checkName(m.To.Name); err != nil {
		return malformed("manifest: to: %v", err)
	}
	if m.Seq == 0 {
		return malformed("manifest: seq must be at least 1")
	}
	if !canonicalTime(m.Created) || !canonicalTime(m.Expires) || !m.Expires.After(m.Created) {
		return malformed("manifest: expires must be after created, both UTC whole seconds")
	}
	if err := checkKeyID(m.Signer); err != nil {
		return malformed("manifest: signer: %v", err)
	}
	if len(m.Deliveries) > MaxManifestEntries {
		return fmt.Errorf("%w: manifest lists %d deliveries, limit %d", ErrTooLarge, len(m.Deliveries), MaxManifestEntries)
	}
	ids := map[string]bool{}
	objs := map[Object]bool{}
	for i := range m.Deliveries {
		e := &m.Deliveries[i]
		bad := func(f string, a ...any) error {
			return malformed("manifest: delivery %d: %s", i+1, fmt.Sprintf(f, a...))
		}
		if err := checkID(e.ID); err != nil {
			return bad("id: %v", err)
		}
		if !e.Kind.Valid() {
			return bad("unknown kind %q", e.Kind)
		}
		if (e.Kind == KindRevoke) != (e.Revokes != "") || e.Revokes == KindRevoke || (e.Revokes != "" && !e.Revokes.Valid()) {
			return bad("revokes %q with kind %s", e.Revokes, e.Kind)
		}
		if err := checkName(e.Target); err != nil {
			return bad("target: %v", err)
		}
		if e.Owner != "" {
			if err := checkName(e.Owner); err != nil {
				return bad("owner: %v", err)
			}
		}
		if e.Seq == 0 {
			return bad("seq must be at least 1")
		}
		if e.Size < 1 || e.Size > MaxBytes {
			return bad("size %d, want 1 to %d", e.Size, MaxBytes)
		}
		if len(e.SHA256) != 64 || checkKeyID(e.SHA256[:32]) != nil || checkKeyID(e.SHA256[32:]) != nil {
			return bad("sha256: want 64 lowercase hex digits")
		}
		if o := e.Object(); o.Kind == KindGroupKey && m.To.Type != ToMachine {
			return bad("a group key is delivered to a machine, not a group")
		}
		if o := e.Object(); o.Kind == KindGroupKey && o.Owner != "" {
			return bad("a group key has no owner")
		}
		if ids[e.ID] {
			return bad("id %q listed twice", e.ID)
		}
		if objs[e.Object()] {
			return bad("%s listed twice", e.Object())
		}
		ids[e.ID], objs[e.Object()] = true, true
	}
	return nil
}

// ParseManifest decodes a manifest strictly: the envelope line by line, the
// body as JSON with exactly the keys of SPEC.md section 10.2, no duplicate,
// no other, in their canonical encoding. Whatever it accepts, Marshal gives
// back byte for byte. It does not verify the signature.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestBytes {
		return nil, fmt.Errorf("%w: manifest of %d bytes, limit %d", ErrTooLarge, len(b), MaxManifestBytes)
	}
	p := &headerParser{b: b}
	first, ok := p.line()
	if !ok {
		return nil, malformed("manifest: no version line")
	}
	if first != FeedVersion {
		if strings.HasPrefix(first, feedVersionPrefix) {
			return nil, fmt.Errorf("%w: %q", ErrUnsupported, first)
		}
		return nil, malformed("not a credagent feed manifest")
	}
	m := &Manifest{}
	signer, ok := p.field("signer")
	if !ok || checkKeyID(signer) != nil {
		return nil, malformed("manifest: missing or bad signer line")
	}
	m.Signer = signer
	lv, ok := p.field("body")
	if !ok {
		return nil, malformed("manifest: missing body line")
	}
	blen, err := parseUint(lv)
	if err != nil {
		return nil, malformed("manifest: body length: %v", err)
	}
	if blank, ok := p.line(); !ok || blank != "" {
		return nil, malformed("manifest: header does not end with an empty line")
	}
	rest := b[p.off:]
	if blen > uint64(len(rest)) {
		return nil, malformed("manifest: truncated body")
	}
	m.header, m.body = b[:p.off:p.off], rest[:blen:blen]
	trailer := rest[blen:]
	const sigPrefix = "\nsignature: "
	if !bytes.HasPrefix(trailer, []byte(sigPrefix)) || !bytes.HasSuffix(trailer, []byte("\n")) || len(trailer) < len(sigPrefix)+1 {
		return nil, malformed("manifest: missing or malformed signature line")
	}
	enc := trailer[len(sigPrefix) : len(trailer)-1]
	if len(enc) > 256 {
		return nil, malformed("manifest: signature too long")
	}
	if m.Signature, err = decodeB64(string(enc)); err != nil || len(m.Signature) == 0 {
		return nil, malformed("manifest: signature: not canonical base64")
	}
	if err := m.decodeBody(); err != nil {
		return nil, err
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	if !bytes.Equal(m.marshalBody(), m.body) {
		return nil, malformed("manifest: body is not in its canonical encoding")
	}
	return m, nil
}

// wireManifest and wireEntry are the body's JSON, decoded strictly
// (agent/strictjson: keys exact and once, no other, no null).
type wireManifest struct {
	To         string      `json:"to"`
	Seq        uint64      `json:"seq"`
	Created    string      `json:"created"`
	Expires    string      `json:"expires"`
	Deliveries []wireEntry `json:"deliveries"`
}

type wireEntry struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Revokes string `json:"revokes"`
	Target  string `json:"target"`
	Owner   string `json:"owner"`
	Seq     uint64 `json:"seq"`
	Size    uint64 `json:"size"`
	SHA256  string `json:"sha256"`
}

// decodeBody decodes the body strictly. Missing keys and non-canonical
// forms are caught after, by check and by comparing the body with its
// canonical encoding.
func (m *Manifest) decodeBody() error {
	var w wireManifest
	if err := strictjson.Decode(m.body, &w, strictjson.Options{NoNull: true}); err != nil {
		return malformed("manifest: %v", err)
	}
	if w.Deliveries == nil {
		return malformed("manifest: deliveries: want an array")
	}
	if len(w.Deliveries) > MaxManifestEntries {
		return fmt.Errorf("%w: manifest lists %d deliveries, limit %d", ErrTooLarge, len(w.Deliveries), MaxManifestEntries)
	}
	t, n, ok := strings.Cut(w.To, " ")
	if !ok {
		return malformed("manifest: to: want \"machine NAME\" or \"group NAME\"")
	}
	m.To, m.Seq = Address{AddressType(t), n}, w.Seq
	var err error
	if m.Created, err = parseTime(w.Created); err != nil {
		return malformed("manifest: created: %v", err)
	}
	if m.Expires, err = parseTime(w.Expires); err != nil {
		return malformed("manifest: expires: %v", err)
	}
	m.Deliveries = make([]ManifestEntry, 0, len(w.Deliveries))
	for i, e := range w.Deliveries {
		if e.Size > MaxBytes {
			return malformed("manifest: delivery %d: size %d, want 1 to %d", i+1, e.Size, MaxBytes)
		}
		m.Deliveries = append(m.Deliveries, ManifestEntry{ID: e.ID, Kind: Kind(e.Kind), Revokes: Kind(e.Revokes),
			Target: e.Target, Owner: e.Owner, Seq: e.Seq, Size: int64(e.Size), SHA256: e.SHA256})
	}
	return nil
}

// Verify checks the manifest's signature against the pinned portal keys:
// ErrUnknownSigner if no pinned key has its signer ID, ErrBadSignature if
// it does not verify.
func (m *Manifest) Verify(pinned []crypto.PublicKey) error {
	m.verified = false
	header, body := m.header, m.body
	if body == nil {
		body = m.marshalBody()
	}
	if header == nil {
		header = manifestHeader(m.Signer, len(body))
	}
	if err := verifySignature(pinned, m.Signer, manifestMessage(header, body), m.Signature); err != nil {
		return fmt.Errorf("manifest %s seq %d: %w", m.To, m.Seq, err)
	}
	m.verified = true
	return nil
}

// Verified reports whether Verify has succeeded on m.
func (m *Manifest) Verified() bool { return m.verified }

// ManifestChecker runs the agent's checks on a fetched manifest, in the
// order of SPEC.md section 10.4.
type ManifestChecker struct {
	// MaxBytes bounds the manifest; zero means MaxManifestBytes.
	MaxBytes int64
	Signers  []crypto.PublicKey
	Now      time.Time
}

// Check parses b and checks that it is a manifest for want, signed by a
// pinned key, not expired, and not older than last (the newest manifest
// accepted before for want, with lastRaw its bytes; nil if none). A
// manifest with last's sequence is accepted only if it is byte for byte
// the same.
func (c *ManifestChecker) Check(b []byte, want Address, last *Manifest, lastRaw []byte) (*Manifest, error) {
	limit := c.MaxBytes
	if limit <= 0 || limit > MaxManifestBytes {
		limit = MaxManifestBytes
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: manifest of %d bytes, limit %d", ErrTooLarge, len(b), limit)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, err
	}
	if err := m.Verify(c.Signers); err != nil {
		return nil, err
	}
	if m.To != want {
		return nil, fmt.Errorf("%w: manifest for %s served as %s's", ErrWrongRecipient, m.To, want)
	}
	if !c.Now.Before(m.Expires) {
		return nil, fmt.Errorf("%w: manifest %s seq %d expired at %s", ErrExpired, m.To, m.Seq, m.Expires.Format(TimeLayout))
	}
	if last != nil {
		switch {
		case m.Seq < last.Seq:
			return nil, fmt.Errorf("%w: manifest %s seq %d, already at %d", ErrRollback, m.To, m.Seq, last.Seq)
		case m.Seq == last.Seq && !bytes.Equal(b, lastRaw):
			return nil, fmt.Errorf("%w: manifest %s seq %d reused for other content", ErrRollback, m.To, m.Seq)
		}
	}
	return m, nil
}
