package delivery

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

const feedVectorDir = "testdata/feed"

type feedVector struct {
	name    string
	expect  string
	comment string
	address Address
	lastSeq uint64
	build   func(t *testing.T) []byte
}

// feedDeliveries are the deliveries a test feed lists: an application
// sealed to the machine, a group key, a sealed store and credential, and a
// revocation.
func feedDeliveries(t *testing.T) (machine, group []ManifestEntry) {
	toMe, toG := Machine(testMachine), Group(testGroup)
	add := func(list *[]ManifestEntry, d *Delivery) { *list = append(*list, EntryFor(d, d.Marshal())) }
	add(&machine, mk(t, hdr("f-app-1", "app-sap", 3, toMe), goodApp(t).app, machineKey.PublicKey(), edSigner))
	add(&machine, mk(t, hdr("f-gk-1", testGroup, 1, toMe), &GroupKey{PrivateKey: secretOf(groupKey.Bytes())}, machineKey.PublicKey(), edSigner))
	add(&machine, mk(t, hdr("f-store-1", "prod", 2, toMe), testStore(), machineKey.PublicKey(), edSigner))
	add(&machine, mk(t, hdr("f-rev-1", "old-app", 9, toMe), &Revoke{KindApplication}, nil, edSigner))
	add(&group, mk(t, hdr("f-cred-1", "sap-bot", 4, toG), testCredential(), groupKey.PublicKey(), edSigner))
	return machine, group
}

func mkManifest(t *testing.T, to Address, seq uint64, expires time.Time, es []ManifestEntry, s crypto.Signer) *Manifest {
	t.Helper()
	m, err := CreateManifest(to, seq, vectorCreate, expires, es, s)
	if err != nil {
		t.Fatalf("CreateManifest: %v", err)
	}
	return m
}

// rawManifest signs an arbitrary body, as a portal that had built those
// bytes would.
func rawManifest(t *testing.T, body string, s crypto.Signer) []byte {
	t.Helper()
	id, err := SignerID(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	h := manifestHeader(id, len(body))
	sig, err := sign(s, manifestMessage(h, []byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(string(h) + body + "\nsignature: " + b64.EncodeToString(sig) + "\n")
}

func feedVectors() []feedVector {
	toMe, toG := Machine(testMachine), Group(testGroup)
	later := vectorNow.Add(24 * time.Hour)
	good := func(t *testing.T, seq uint64) *Manifest {
		m, _ := feedDeliveries(t)
		return mkManifest(t, toMe, seq, later, m, edSigner)
	}
	body := func(t *testing.T) string { return string(good(t, 7).body) }
	return []feedVector{
		{"machine", "success", "the machine's manifest: application, group key, sealed store, revocation", toMe, 6, func(t *testing.T) []byte {
			return good(t, 7).Marshal()
		}},
		{"group-ecdsa", "success", "a group's manifest signed with ECDSA P-256", toG, 0, func(t *testing.T) []byte {
			_, g := feedDeliveries(t)
			return mkManifest(t, toG, 1, later, g, ecSigner).Marshal()
		}},
		{"empty", "success", "a manifest that lists nothing", toMe, 0, func(t *testing.T) []byte {
			return mkManifest(t, toMe, 1, later, nil, edSigner).Marshal()
		}},
		{"expired", "expired", "the manifest's expiry has passed", toMe, 0, func(t *testing.T) []byte {
			m, _ := feedDeliveries(t)
			return mkManifest(t, toMe, 8, vectorNow, m, edSigner).Marshal()
		}},
		{"rollback", "rollback", "an older sequence than the newest accepted", toMe, 8, func(t *testing.T) []byte {
			return good(t, 7).Marshal()
		}},
		{"seq-reused", "rollback", "the newest accepted sequence with other content", toMe, 7, func(t *testing.T) []byte {
			return good(t, 7).Marshal()
		}},
		{"other-address", "wrong-recipient", "another machine's manifest served at this machine's path", toMe, 0, func(t *testing.T) []byte {
			return mkManifest(t, Machine("machine-02"), 9, later, nil, edSigner).Marshal()
		}},
		{"body-changed", "bad-signature", "an entry's hash changed after signing", toMe, 0, func(t *testing.T) []byte {
			b := good(t, 7).Marshal()
			i := bytes.Index(b, []byte(`"sha256":"`)) + len(`"sha256":"`)
			b[i] ^= 1 // one hex digit to another
			if b[i] > 'f' || (b[i] > '9' && b[i] < 'a') {
				b[i] = '0'
			}
			return b
		}},
		{"unknown-signer", "unknown-signer", "well signed by a key that is not pinned", toMe, 0, func(t *testing.T) []byte {
			m, _ := feedDeliveries(t)
			return mkManifest(t, toMe, 7, later, m, rogueSigner).Marshal()
		}},
		{"truncated", "malformed", "the manifest cut short in transit", toMe, 0, func(t *testing.T) []byte {
			b := good(t, 7).Marshal()
			return b[:len(b)*2/3]
		}},
		{"html-error-page", "malformed", "an HTML error page a server returned with 200", toMe, 0, func(t *testing.T) []byte {
			return []byte("<!DOCTYPE html>\n<html><body><h1>502 Bad Gateway</h1></body></html>\n")
		}},
		{"future-version", "unsupported-version", "a later feed version", toMe, 0, func(t *testing.T) []byte {
			return bytes.Replace(good(t, 7).Marshal(), []byte(FeedVersion), []byte("credagent-feed/v2"), 1)
		}},
		{"duplicate-key", "malformed", "the body repeats seq, correctly signed", toMe, 0, func(t *testing.T) []byte {
			return rawManifest(t, strings.Replace(body(t), `"seq":7,`, `"seq":7,"seq":99,`, 1), edSigner)
		}},
		{"key-case", "malformed", `"Seq" for "seq", correctly signed`, toMe, 0, func(t *testing.T) []byte {
			return rawManifest(t, strings.Replace(body(t), `"seq":7,`, `"Seq":7,`, 1), edSigner)
		}},
		{"unknown-key", "malformed", "an extra key in an entry, correctly signed", toMe, 0, func(t *testing.T) []byte {
			return rawManifest(t, strings.Replace(body(t), `{"id":`, `{"url":"https://x/","id":`, 1), edSigner)
		}},
		{"not-canonical", "malformed", "a space after a colon, correctly signed", toMe, 0, func(t *testing.T) []byte {
			return rawManifest(t, strings.Replace(body(t), `"seq":7`, `"seq": 7`, 1), edSigner)
		}},
		{"seq-as-string", "malformed", "seq as a JSON string, correctly signed", toMe, 0, func(t *testing.T) []byte {
			return rawManifest(t, strings.Replace(body(t), `"seq":7`, `"seq":"7"`, 1), edSigner)
		}},
		{"object-twice", "malformed", "two deliveries of the same object, correctly signed", toMe, 0, func(t *testing.T) []byte {
			b := body(t)
			i := strings.Index(b, `{"id":"f-app-1"`)
			j := strings.Index(b[i:], "}") + i + 1
			dup := strings.Replace(b[i:j], "f-app-1", "f-app-2", 1)
			return rawManifest(t, b[:j]+","+dup+b[j:], edSigner)
		}},
		{"group-key-in-group", "malformed", "a group key listed in a group's manifest", toG, 0, func(t *testing.T) []byte {
			m, _ := feedDeliveries(t)
			b := string(mkManifest(t, toG, 1, later, m[3:], edSigner).body)
			gk := EntryFor(mk(t, hdr("f-gk-2", testGroup, 2, Machine(testMachine)), &GroupKey{PrivateKey: secretOf(groupKey.Bytes())}, machineKey.PublicKey(), edSigner), []byte("x"))
			entry := fmt.Sprintf(`{"id":"%s","kind":"group-key","target":"%s","seq":2,"size":1,"sha256":"%s"}`, gk.ID, gk.Target, gk.SHA256)
			return rawManifest(t, strings.Replace(b, `"deliveries":[`, `"deliveries":[`+entry+",", 1), edSigner)
		}},
		{"owners", "success", "stores named prod of no owner, of team-a and of team-b, each sealed, side by side", toMe, 0, func(t *testing.T) []byte {
			return mkManifest(t, toMe, 1, later, ownedStores(t), edSigner).Marshal()
		}},
		{"owner-empty", "malformed", `an entry with "owner":"", correctly signed`, toMe, 0, func(t *testing.T) []byte {
			b := string(mkManifest(t, toMe, 1, later, ownedStores(t)[:1], edSigner).body)
			return rawManifest(t, strings.Replace(b, `,"seq":2`, `,"owner":"","seq":2`, 1), edSigner)
		}},
		{"owner-before-target", "malformed", "the owner key before target, correctly signed", toMe, 0, func(t *testing.T) []byte {
			b := string(mkManifest(t, toMe, 1, later, ownedStores(t)[1:2], edSigner).body)
			b = strings.Replace(b, `"target":"prod","owner":"team-a"`, `"owner":"team-a","target":"prod"`, 1)
			return rawManifest(t, b, edSigner)
		}},
		{"owned-object-twice", "malformed", "team-a's store prod listed twice, correctly signed", toMe, 0, func(t *testing.T) []byte {
			b := string(mkManifest(t, toMe, 1, later, ownedStores(t)[1:2], edSigner).body)
			i := strings.Index(b, `{"id":`)
			j := strings.Index(b[i:], "}") + i + 1
			dup := strings.Replace(b[i:j], `"id":"f-own-a"`, `"id":"f-own-x"`, 1)
			return rawManifest(t, b[:j]+","+dup+b[j:], edSigner)
		}},
		{"group-key-owned", "malformed", "a group key entry with an owner, correctly signed", toMe, 0, func(t *testing.T) []byte {
			m, _ := feedDeliveries(t)
			b := string(mkManifest(t, toMe, 1, later, m[1:2], edSigner).body)
			return rawManifest(t, strings.Replace(b, `,"seq":1`, `,"owner":"team-a","seq":1`, 1), edSigner)
		}},
	}
}

// ownedStores are three stores named prod: of no owner, of team-a and of
// team-b (SPEC.md section 9), each sealed to the machine key.
func ownedStores(t *testing.T) []ManifestEntry {
	toMe := Machine(testMachine)
	var es []ManifestEntry
	for _, o := range []struct{ id, owner string }{{"f-own-0", ""}, {"f-own-a", "team-a"}, {"f-own-b", "team-b"}} {
		d := mk(t, owned(hdr(o.id, "prod", 2, toMe), o.owner), testStore(), machineKey.PublicKey(), edSigner)
		es = append(es, EntryFor(d, d.Marshal()))
	}
	return es
}

func (v feedVector) fileName() string         { return v.name }
func (v feedVector) make(t *testing.T) []byte { return v.build(t) }
func (v feedVector) metadata() map[string]string {
	return map[string]string{"expect": v.expect, "comment": v.comment, "now": vectorNow.Format(TimeLayout),
		"address": v.address.String(), "last-seq": strconv.FormatUint(v.lastSeq, 10)}
}

// TestFeedVectorsUpToDate regenerates the feed vectors in memory and fails
// on any difference from testdata/feed. Not parallel: the seed is
// process-wide.
func TestFeedVectorsUpToDate(t *testing.T) {
	checkUpToDate(t, feedVectorDir, 7, feedMetaKeys, feedVectors)
}

func TestFeedVectors(t *testing.T) {
	t.Parallel()
	for name, f := range vectorFiles(t, feedVectorDir) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			meta, body := readVector(t, f, feedMetaKeys)
			now, err := time.Parse(TimeLayout, meta["now"])
			if err != nil {
				t.Fatal(err)
			}
			typ, name, _ := strings.Cut(meta["address"], " ")
			want := Address{AddressType(typ), name}
			var last *Manifest
			n, err := strconv.ParseUint(meta["last-seq"], 10, 64)
			if err != nil {
				t.Fatalf("last-seq: %v", err)
			}
			if n > 0 {
				last = &Manifest{Seq: n}
			}
			c := &ManifestChecker{Signers: pinned, Now: now}
			m, err := c.Check(body, want, last, nil)
			got := "success"
			if err != nil {
				got = Reason(err)
			}
			if got != meta["expect"] {
				t.Fatalf("got %s (%v), want %s: %s", got, err, meta["expect"], meta["comment"])
			}
			if m != nil && !bytes.Equal(m.Marshal(), body) {
				t.Fatal("accepted manifest does not re-marshal to the same bytes")
			}
		})
	}
}

func TestManifestSameBytesIsNotRollback(t *testing.T) {
	es, _ := feedDeliveries(t)
	b := mkManifest(t, Machine(testMachine), 5, vectorNow.Add(time.Hour), es, edSigner).Marshal()
	c := &ManifestChecker{Signers: pinned, Now: vectorNow}
	last, err := c.Check(b, Machine(testMachine), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(b, Machine(testMachine), last, b); err != nil {
		t.Fatalf("the same manifest again: %v", err)
	}
	c.MaxBytes = int64(len(b) - 1)
	if _, err := c.Check(b, Machine(testMachine), nil, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the agent's limit: %v", err)
	}
}

func TestManifestEntriesMatch(t *testing.T) {
	d := mk(t, hdr("e-1", "prod", 2, Machine(testMachine)), testStore(), machineKey.PublicKey(), edSigner)
	raw := d.Marshal()
	e := EntryFor(d, raw)
	if !e.Matches(raw) || !e.Describes(d) {
		t.Fatal("entry does not match its own delivery")
	}
	other := append(bytes.Clone(raw[:len(raw)-2]), 'A', '\n')
	if e.Matches(other) || e.Matches(raw[:len(raw)-1]) {
		t.Fatal("entry matches other bytes")
	}
	d.Seq = 3
	if e.Describes(d) {
		t.Fatal("entry describes a delivery of another sequence")
	}
}

func TestFeedDir(t *testing.T) {
	tests := []struct {
		a    Address
		want string
	}{
		{Machine("machine-01"), "machine/machine-01"},
		{Group("rpa_robots"), "group/rpa_robots"},
		{Machine("../etc"), "machine/~2e2e2f657463"},
		{Group("a b"), "group/~612062"},
		{Machine("~61"), "machine/~7e3631"},
		{Machine("host.example.com"), "machine/~686f73742e6578616d706c652e636f6d"},
	}
	for _, tt := range tests {
		if got := FeedDir(tt.a); got != tt.want {
			t.Errorf("FeedDir(%v) = %q, want %q", tt.a, got, tt.want)
		}
	}
	if got := FeedFile(Machine("m1"), "abc"); got != "machine/m1/abc.delivery" {
		t.Errorf("FeedFile = %q", got)
	}
}

func FuzzParseManifest(f *testing.F) {
	addVectorSeeds(f, feedVectorDir)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			if Reason(err) == "error" {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if got := m.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("malleable: parsed and re-marshalled differently\n%q\n%q", b, got)
		}
		c := &ManifestChecker{Signers: pinned, Now: vectorNow}
		if _, err := c.Check(b, m.To, nil, nil); err != nil && Reason(err) == "error" {
			t.Fatalf("untyped error %v", err)
		}
	})
}
