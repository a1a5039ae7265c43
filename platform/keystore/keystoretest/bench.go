package keystoretest

import (
	"crypto/hpke"
	"testing"

	"github.com/credagent/credagent/platform/keystore"
)

// BenchmarkUnwrap measures one unwrap with k: the HPKE open of a small
// message sealed to k's public key, which is one ECDH in the key's store
// plus the HKDF and AES-GCM work in software.
func BenchmarkUnwrap(b *testing.B, k keystore.Key) {
	pub, err := hpke.NewDHKEMPublicKey(k.PublicKey())
	if err != nil {
		b.Fatal(err)
	}
	priv, err := hpke.NewDHKEMPrivateKey(k)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 4<<10) // about a sealed .pfx's content key and metadata
	info := []byte("credagent benchmark")
	ct, err := hpke.Seal(pub, hpke.HKDFSHA256(), hpke.AES256GCM(), info, msg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := hpke.Open(priv, hpke.HKDFSHA256(), hpke.AES256GCM(), info, ct); err != nil {
			b.Fatal(err)
		}
	}
}
