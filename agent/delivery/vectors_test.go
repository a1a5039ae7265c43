package delivery

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/x509"
	"fmt"
	"strconv"
	"testing"
	"time"
)

const vectorDir = "testdata/vectors"

type vector struct {
	name    string
	expect  string // "success" or a Reason code
	comment string
	lastSeq uint64
	build   func(t *testing.T) []byte
}

func hdr(id, target string, seq uint64, to Address) Header {
	return Header{ID: id, Target: target, Seq: seq, To: to, Created: vectorCreate}
}

// owned sets h's owner.
func owned(h Header, owner string) Header { h.Owner = owner; return h }

func mk(t *testing.T, h Header, c Content, to *ecdh.PublicKey, s crypto.Signer) *Delivery {
	t.Helper()
	d, err := Create(h, c, to, s)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return d
}

// resign signs d's current header and payload again, as a portal that had
// built those bytes would.
func resign(t *testing.T, d *Delivery, s crypto.Signer) *Delivery {
	t.Helper()
	id, err := SignerID(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	d.Signer = id
	d.header = marshalHeader(&d.Header, len(d.Payload))
	if d.Signature, err = sign(s, signedMessage(d.header, d.Payload)); err != nil {
		t.Fatal(err)
	}
	return d
}

// sealRaw seals arbitrary plaintext for h, bypassing content validation.
func sealRaw(t *testing.T, h *Header, to *ecdh.PublicKey, plain []byte) []byte {
	t.Helper()
	pk, err := hpke.NewDHKEMPublicKey(to)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := hpke.Seal(pk, suiteKDF, suiteAEAD, info(h), plain)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func testStore() *Store {
	return &Store{DisplayName: "Production vault", Servers: []string{"https://ccp1.example.com", "https://ccp2.example.com:8443"},
		AppID: "app-sap", Safe: "RPA", Folder: "Root", Pins: []string{"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="},
		NoProxy: []string{".example.com"}, HealthObject: "health-check", CacheTTLSeconds: 300, CacheMaxStaleSeconds: 3600}
}

func testCredential() *Credential {
	return &Credential{Store: "prod", Object: "sap-bot-01", UsernameVar: "sap_user"}
}

func vectors() []vector {
	app := func(t *testing.T) *Application { return goodApp(t).app }
	toMe := Machine(testMachine)
	return append([]vector{
		{"application-machine-ed25519", "success", "application sealed to the machine key, signed with Ed25519", 0, func(t *testing.T) []byte {
			return mk(t, hdr("v-app-1", "app-sap", 1, toMe), app(t), machineKey.PublicKey(), edSigner).Marshal()
		}},
		{"application-machine-ecdsa", "success", "application sealed to the machine key, signed with ECDSA P-256, newer than applied", 4, func(t *testing.T) []byte {
			return mk(t, hdr("v-app-2", "app-sap", 5, toMe), app(t), machineKey.PublicKey(), ecSigner).Marshal()
		}},
		{"application-group", "success", "application sealed once to the group key", 0, func(t *testing.T) []byte {
			return mk(t, hdr("v-app-3", "app-sap", 1, Group(testGroup)), app(t), groupKey.PublicKey(), edSigner).Marshal()
		}},
		{"application-expires-later", "success", "an expiry time in the future", 0, func(t *testing.T) []byte {
			h := hdr("v-app-4", "app-sap", 1, toMe)
			h.Expires = vectorNow.Add(time.Hour)
			return mk(t, h, app(t), machineKey.PublicKey(), edSigner).Marshal()
		}},
		{"group-key", "success", "the group's private key sealed to the machine key", 0, func(t *testing.T) []byte {
			return mk(t, hdr("v-gk-1", testGroup, 1, toMe), &GroupKey{PrivateKey: secretOf(groupKey.Bytes())}, machineKey.PublicKey(), edSigner).Marshal()
		}},
		{"store", "success", "a store, signed, not sealed", 0, func(t *testing.T) []byte {
			return mk(t, hdr("v-store-1", "prod", 1, toMe), testStore(), nil, edSigner).Marshal()
		}},
		{"credential-group", "success", "a credential addressed to the group", 0, func(t *testing.T) []byte {
			return mk(t, hdr("v-cred-1", "sap-bot", 1, Group(testGroup)), testCredential(), nil, ecSigner).Marshal()
		}},
		{"revoke", "success", "revokes application app-sap, newer than its last delivery", 1, func(t *testing.T) []byte {
			return mk(t, hdr("v-rev-1", "app-sap", 2, toMe), &Revoke{KindApplication}, nil, edSigner).Marshal()
		}},
		{"payload-flipped", "bad-signature", "one bit of the sealed payload flipped", 0, func(t *testing.T) []byte {
			d := mk(t, hdr("v-bad-1", "app-sap", 1, toMe), app(t), machineKey.PublicKey(), edSigner)
			d.Payload[len(d.Payload)/2] ^= 1
			return d.Marshal()
		}},
		{"header-changed", "bad-signature", "seq raised in the header after signing", 0, func(t *testing.T) []byte {
			d := mk(t, hdr("v-bad-2", "store1", 1, toMe), testStore(), nil, edSigner)
			d.Seq = 99
			return d.Marshal()
		}},
		{"signer-confused", "bad-signature", "an Ed25519 signature labelled with the ECDSA key's ID", 0, func(t *testing.T) []byte {
			d := mk(t, hdr("v-bad-3", "prod", 1, toMe), testStore(), nil, edSigner)
			d.Signer, _ = SignerID(ecSigner.Public())
			sig, _ := sign(edSigner, signedMessage(marshalHeader(&d.Header, len(d.Payload)), d.Payload))
			d.Signature = sig
			return d.Marshal()
		}},
		{"unknown-signer", "unknown-signer", "well signed, by a key that is not pinned", 0, func(t *testing.T) []byte {
			return mk(t, hdr("v-bad-4", "app-sap", 1, toMe), app(t), machineKey.PublicKey(), rogueSigner).Marshal()
		}},
		{"other-machine", "wrong-recipient", "addressed to another machine", 0, func(t *testing.T) []byte {
			return mk(t, hdr("v-bad-5", "app-sap", 1, Machine("machine-02")), app(t), otherKey.PublicKey(), edSigner).Marshal()
		}},
		{"sealed-to-other-key", "wrong-recipient", "addressed to this machine, sealed to a key it does not hold", 0, func(t *testing.T) []byte {
			return mk(t, hdr("v-bad-6", "app-sap", 1, toMe), app(t), otherKey.PublicKey(), edSigner).Marshal()
		}},
		{"other-group", "wrong-recipient", "addressed to a group this machine is not in", 0, func(t *testing.T) []byte {
			return mk(t, hdr("v-bad-7", "sap-bot", 1, Group("finance")), testCredential(), nil, edSigner).Marshal()
		}},
		{"replay-equal", "replay", "the same sequence number as the one applied", 3, func(t *testing.T) []byte {
			return mk(t, hdr("v-bad-8", "app-sap", 3, toMe), app(t), machineKey.PublicKey(), edSigner).Marshal()
		}},
		{"replay-older", "replay", "an older sequence number than the one applied", 7, func(t *testing.T) []byte {
			return mk(t, hdr("v-bad-9", "app-sap", 2, toMe), &Revoke{KindApplication}, nil, edSigner).Marshal()
		}},
		{"expired-delivery", "expired", "the delivery's expires time has passed", 0, func(t *testing.T) []byte {
			h := hdr("v-bad-10", "app-sap", 1, toMe)
			h.Expires = vectorNow.Add(-time.Second)
			return mk(t, h, app(t), machineKey.PublicKey(), edSigner).Marshal()
		}},
		{"expired-certificate", "certificate-expired", "the application certificate expired in 2021", 0, func(t *testing.T) []byte {
			a := makeApp(t, appKey, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC))
			return mk(t, hdr("v-bad-11", "app-sap", 1, toMe), a.app, machineKey.PublicKey(), edSigner).Marshal()
		}},
		{"key-mismatch", "key-mismatch", "the private key is not the certificate's", 0, func(t *testing.T) []byte {
			a := makeApp(t, otherAppKey, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC))
			return mk(t, hdr("v-bad-12", "app-sap", 1, toMe), a.app, machineKey.PublicKey(), edSigner).Marshal()
		}},
		{"broken-chain", "bad-chain", "the second certificate did not issue the first", 0, func(t *testing.T) []byte {
			a := goodApp(t)
			other := testCert(t, "unrelated CA", 9, otherAppKey.Public(), nil, otherAppKey, true, a.ca.NotBefore, a.ca.NotAfter)
			a.app.Chain[1] = other.Raw
			return mk(t, hdr("v-bad-13", "app-sap", 1, toMe), a.app, machineKey.PublicKey(), edSigner).Marshal()
		}},
		{"cut-and-paste", "decrypt", "the sealed payload of another delivery, re-signed under a new ID", 0, func(t *testing.T) []byte {
			a := mk(t, hdr("v-orig", "app-sap", 1, toMe), app(t), machineKey.PublicKey(), edSigner)
			b := mk(t, hdr("v-bad-14", "app-sap", 2, toMe), app(t), machineKey.PublicKey(), edSigner)
			b.Payload = a.Payload
			return resign(t, b, edSigner).Marshal()
		}},
		{"target-swap", "decrypt", "the sealed payload of app-sap under target app-hr, re-signed", 0, func(t *testing.T) []byte {
			d := mk(t, hdr("v-bad-15", "app-sap", 1, toMe), app(t), machineKey.PublicKey(), edSigner)
			d.Target = "app-hr"
			return resign(t, d, edSigner).Marshal()
		}},
		{"truncated", "malformed", "the file cut in the middle of the payload", 0, func(t *testing.T) []byte {
			b := mk(t, hdr("v-bad-16", "app-sap", 1, toMe), app(t), machineKey.PublicKey(), edSigner).Marshal()
			return b[:len(b)/2]
		}},
		{"trailing-data", "malformed", "bytes after the signature line", 0, func(t *testing.T) []byte {
			return append(mk(t, hdr("v-bad-17", "prod", 1, toMe), testStore(), nil, edSigner).Marshal(), '\n')
		}},
		{"non-canonical-seq", "malformed", "seq written with a leading zero", 0, func(t *testing.T) []byte {
			b := mk(t, hdr("v-bad-18", "prod", 7, toMe), testStore(), nil, edSigner).Marshal()
			return bytes.Replace(b, []byte("\nseq: 7\n"), []byte("\nseq: 07\n"), 1)
		}},
		{"future-version", "unsupported-version", "a later format version", 0, func(t *testing.T) []byte {
			b := mk(t, hdr("v-bad-19", "prod", 1, toMe), testStore(), nil, edSigner).Marshal()
			return bytes.Replace(b, []byte(Version), []byte("credagent-delivery/v2"), 1)
		}},
		{"payload-too-large", "too-large", "a payload length over the limit", 0, func(t *testing.T) []byte {
			b := mk(t, hdr("v-bad-20", "prod", 1, toMe), testStore(), nil, edSigner).Marshal()
			i := bytes.Index(b, []byte("\npayload: "))
			j := bytes.Index(b[i+1:], []byte("\n"))
			return append(append(append([]byte{}, b[:i]...), fmt.Sprintf("\npayload: %d", MaxPayloadBytes+1)...), b[i+1+j:]...)
		}},
		{"store-http", "invalid", "a store server that is not https, correctly signed", 0, func(t *testing.T) []byte {
			d := mk(t, hdr("v-bad-21", "prod", 1, toMe), testStore(), nil, edSigner)
			d.Payload = bytes.Replace(d.Payload, []byte("https://ccp1"), []byte("http://ccp1"), 1)
			return resign(t, d, edSigner).Marshal()
		}},
		{"duplicate-json-key", "malformed", "a credential whose JSON repeats a key, correctly signed", 0, func(t *testing.T) []byte {
			d := mk(t, hdr("v-bad-22", "sap-bot", 1, toMe), testCredential(), nil, edSigner)
			d.Payload = []byte(`{"store":"prod","object":"a","object":"b"}`)
			return resign(t, d, edSigner).Marshal()
		}},
		{"unknown-json-key", "malformed", "sealed application content with an unknown key", 0, func(t *testing.T) []byte {
			d := mk(t, hdr("v-bad-23", "app-sap", 1, toMe), app(t), machineKey.PublicKey(), edSigner)
			d.Payload = sealRaw(t, &d.Header, machineKey.PublicKey(), []byte(`{"chain":[],"private_key":"","extra":1}`))
			return resign(t, d, edSigner).Marshal()
		}},
		{"group-key-to-group", "malformed", "a group key addressed to a group", 0, func(t *testing.T) []byte {
			d := mk(t, hdr("v-bad-24", testGroup, 1, toMe), &GroupKey{PrivateKey: secretOf(groupKey.Bytes())}, machineKey.PublicKey(), edSigner)
			d.To = Group(testGroup)
			return resign(t, d, edSigner).Marshal()
		}},
		{"not-a-delivery", "malformed", "a PEM file dropped by mistake", 0, func(t *testing.T) []byte {
			return []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
		}},
	}, append(append(strictVectors(), ownerVectors()...), sealedVectors()...)...)
}

// ownerVectors are the vectors of SPEC section 9. They come after the
// strict vectors, so that regenerating keeps the bytes of every vector
// before them.
func ownerVectors() []vector {
	app := func(t *testing.T) *Application { return goodApp(t).app }
	toMe := Machine(testMachine)
	return []vector{
		{"application-owned", "success", "an application of owner team-a, sealed to the machine key", 0, func(t *testing.T) []byte {
			return mk(t, owned(hdr("v-own-1", "app-sap", 1, toMe), "team-a"), app(t), machineKey.PublicKey(), edSigner).Marshal()
		}},
		{"credential-owned", "success", "a credential of owner team-b, addressed to the group", 0, func(t *testing.T) []byte {
			return mk(t, owned(hdr("v-own-2", "sap-bot", 1, Group(testGroup)), "team-b"), testCredential(), nil, ecSigner).Marshal()
		}},
		{"revoke-owned", "success", "revokes owner team-a's store prod", 3, func(t *testing.T) []byte {
			return mk(t, owned(hdr("v-own-3", "prod", 4, toMe), "team-a"), &Revoke{KindStore}, nil, edSigner).Marshal()
		}},
		{"owner-swap", "decrypt", "team-a's sealed application relabelled as team-b's, re-signed", 0, func(t *testing.T) []byte {
			d := mk(t, owned(hdr("v-own-4", "app-sap", 1, toMe), "team-a"), app(t), machineKey.PublicKey(), edSigner)
			d.Owner = "team-b"
			return resign(t, d, edSigner).Marshal()
		}},
		{"owner-added", "decrypt", "an application without owner relabelled as team-b's, re-signed", 0, func(t *testing.T) []byte {
			d := mk(t, hdr("v-own-5", "app-sap", 1, toMe), app(t), machineKey.PublicKey(), edSigner)
			d.Owner = "team-b"
			return resign(t, d, edSigner).Marshal()
		}},
		{"owner-removed", "decrypt", "team-a's sealed application with its owner line dropped, re-signed", 0, func(t *testing.T) []byte {
			d := mk(t, owned(hdr("v-own-6", "app-sap", 1, toMe), "team-a"), app(t), machineKey.PublicKey(), edSigner)
			d.Owner = ""
			return resign(t, d, edSigner).Marshal()
		}},
		{"group-key-owned", "malformed", "a group key with an owner", 0, func(t *testing.T) []byte {
			d := mk(t, hdr("v-own-7", testGroup, 1, toMe), &GroupKey{PrivateKey: secretOf(groupKey.Bytes())}, machineKey.PublicKey(), edSigner)
			d.Owner = "team-a"
			return resign(t, d, edSigner).Marshal()
		}},
		{"owner-misplaced", "malformed", "the owner line after recipient instead of after to", 0, func(t *testing.T) []byte {
			b := mk(t, owned(hdr("v-own-8", "app-sap", 1, toMe), "team-a"), app(t), machineKey.PublicKey(), edSigner).Marshal()
			i := bytes.Index(b, []byte("owner: team-a\n"))
			j := bytes.Index(b, []byte("recipient: "))
			k := j + bytes.IndexByte(b[j:], '\n') + 1
			out := append([]byte{}, b[:i]...)
			out = append(out, b[j:k]...)
			out = append(out, "owner: team-a\n"...)
			return append(out, b[k:]...)
		}},
		{"owner-trailing-space", "malformed", "an owner name ending in a space", 0, func(t *testing.T) []byte {
			b := mk(t, owned(hdr("v-own-9", "prod", 1, toMe), "team-a"), testStore(), nil, edSigner).Marshal()
			return bytes.Replace(b, []byte("owner: team-a\n"), []byte("owner: team-a \n"), 1)
		}},
	}
}

// sealedVectors are stores and credentials sealed as a feed carries them
// (SPEC.md section 3.2).
func sealedVectors() []vector {
	toMe := Machine(testMachine)
	return []vector{
		{"store-sealed", "success", "a store sealed to the machine key, as a feed carries it", 0, func(t *testing.T) []byte {
			return mk(t, hdr("v-store-2", "prod", 2, toMe), testStore(), machineKey.PublicKey(), edSigner).Marshal()
		}},
		{"credential-sealed-group", "success", "a credential sealed to the group key", 0, func(t *testing.T) []byte {
			return mk(t, hdr("v-cred-2", "sap-bot", 2, Group(testGroup)), testCredential(), groupKey.PublicKey(), ecSigner).Marshal()
		}},
		{"store-sealed-other-key", "wrong-recipient", "a store sealed to a key this machine does not hold", 0, func(t *testing.T) []byte {
			return mk(t, hdr("v-bad-25", "prod", 2, toMe), testStore(), otherKey.PublicKey(), edSigner).Marshal()
		}},
		{"revoke-with-recipient", "malformed", "a revocation naming a recipient: it has nothing to seal", 0, func(t *testing.T) []byte {
			d := mk(t, hdr("v-bad-26", "app-sap", 2, toMe), &Revoke{KindApplication}, nil, edSigner)
			b := d.Marshal()
			return bytes.Replace(b, []byte("\ncreated: "), []byte("\nrecipient: "+KeyID(machineKey.PublicKey())+"\ncreated: "), 1)
		}},
		{"store-sealed-owned", "success", "owner team-a's store sealed to the machine key", 0, func(t *testing.T) []byte {
			return mk(t, owned(hdr("v-own-10", "prod", 2, toMe), "team-a"), testStore(), machineKey.PublicKey(), edSigner).Marshal()
		}},
		{"credential-sealed-owned-group", "success", "owner team-b's credential sealed to the group key", 0, func(t *testing.T) []byte {
			return mk(t, owned(hdr("v-own-11", "sap-bot", 2, Group(testGroup)), "team-b"), testCredential(), groupKey.PublicKey(), ecSigner).Marshal()
		}},
		{"store-sealed-owner-swap", "decrypt", "team-a's sealed store relabelled as team-b's, re-signed", 0, func(t *testing.T) []byte {
			d := mk(t, owned(hdr("v-own-12", "prod", 2, toMe), "team-a"), testStore(), machineKey.PublicKey(), edSigner)
			d.Owner = "team-b"
			return resign(t, d, edSigner).Marshal()
		}},
		{"credential-sealed-owner-removed", "decrypt", "team-b's sealed credential with its owner line dropped, re-signed", 0, func(t *testing.T) []byte {
			d := mk(t, owned(hdr("v-own-13", "sap-bot", 2, Group(testGroup)), "team-b"), testCredential(), groupKey.PublicKey(), ecSigner)
			d.Owner = ""
			return resign(t, d, ecSigner).Marshal()
		}},
	}
}

// successContent is what each success vector must open to: the content
// its definition delivered. A success vector without an entry fails.
func successContent(t *testing.T) map[string]Content {
	app := goodApp(t).app
	gk := &GroupKey{PrivateKey: secretOf(groupKey.Bytes())}
	return map[string]Content{
		"application-machine-ed25519":      app,
		"application-machine-ecdsa":        app,
		"application-group":                app,
		"application-expires-later":        app,
		"application-owned":                app,
		"group-key":                        gk,
		"store":                            testStore(),
		"store-sealed":                     testStore(),
		"store-sealed-owned":               testStore(),
		"json-whitespace":                  testStore(),
		"expires-one-second-after-created": testStore(),
		"credential-group":                 testCredential(),
		"credential-owned":                 testCredential(),
		"credential-sealed-group":          testCredential(),
		"credential-sealed-owned-group":    testCredential(),
		"revoke":                           &Revoke{KindApplication},
		"revoke-owned":                     &Revoke{KindStore},
	}
}

func (v vector) fileName() string         { return v.name }
func (v vector) make(t *testing.T) []byte { return v.build(t) }
func (v vector) metadata() map[string]string {
	return map[string]string{"expect": v.expect, "comment": v.comment, "now": vectorNow.Format(TimeLayout),
		"machine": testMachine, "group": testGroup, "last-seq": strconv.FormatUint(v.lastSeq, 10)}
}

// TestVectorsUpToDate regenerates the delivery vectors in memory and fails
// on any difference from testdata/vectors. Not parallel: the seed is
// process-wide.
func TestVectorsUpToDate(t *testing.T) {
	checkUpToDate(t, vectorDir, 5, deliveryMetaKeys, vectors)
}

func TestVectors(t *testing.T) {
	t.Parallel()
	want := successContent(t)
	for name, f := range vectorFiles(t, vectorDir) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			meta, body := readVector(t, f, deliveryMetaKeys)
			c := testChecker()
			now, err := time.Parse(TimeLayout, meta["now"])
			if err != nil {
				t.Fatal(err)
			}
			c.Now, c.MachineID = now, meta["machine"]
			group := meta["group"]
			c.InGroup = func(g string) bool { return g == group }
			last, err := strconv.ParseUint(meta["last-seq"], 10, 64)
			if err != nil {
				t.Fatalf("last-seq: %v", err)
			}
			c.LastSeq = func(Object) uint64 { return last }
			a, _, err := c.Check(body)
			got := "success"
			if err != nil {
				got = Reason(err)
			}
			if got != meta["expect"] {
				t.Fatalf("got %s (%v), want %s: %s", got, err, meta["expect"], meta["comment"])
			}
			if a == nil {
				return
			}
			if !bytes.Equal(a.Marshal(), body) {
				t.Fatal("accepted delivery does not re-marshal to the same bytes")
			}
			wc, ok := want[name]
			if !ok {
				t.Fatal("a success vector without its expected content in successContent")
			}
			if err := sameContent(a.Content, wc); err != nil {
				t.Fatalf("opened content: %v", err)
			}
		})
	}
}

// sameContent reports how got differs from want. An application's
// certificates are compared by their signed part (the certificate
// signatures are not reproducible), its key byte for byte; other kinds by
// their canonical JSON.
func sameContent(got, want Content) error {
	if got.Kind() != want.Kind() {
		return fmt.Errorf("kind %s, want %s", got.Kind(), want.Kind())
	}
	if ga, ok := got.(*Application); ok {
		wa := want.(*Application)
		if len(ga.Chain) != len(wa.Chain) {
			return fmt.Errorf("%d certificates, want %d", len(ga.Chain), len(wa.Chain))
		}
		for i := range ga.Chain {
			gc, err1 := x509.ParseCertificate(ga.Chain[i])
			wc, err2 := x509.ParseCertificate(wa.Chain[i])
			if err1 != nil || err2 != nil || !bytes.Equal(gc.RawTBSCertificate, wc.RawTBSCertificate) {
				return fmt.Errorf("certificate %d is not the one delivered (%v %v)", i, err1, err2)
			}
		}
		if !bytes.Equal(ga.PrivateKey.Reveal(), wa.PrivateKey.Reveal()) {
			return fmt.Errorf("private key is not the one delivered")
		}
		return nil
	}
	g, err1 := got.marshal()
	w, err2 := want.marshal()
	if err1 != nil || err2 != nil || !bytes.Equal(g, w) {
		return fmt.Errorf("%s, want %s (%v %v)", g, w, err1, err2)
	}
	return nil
}
