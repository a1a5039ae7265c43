package keystore_test

import (
	"testing"

	"github.com/credagent/credagent/platform/keystore"
	"github.com/credagent/credagent/platform/keystore/keystoretest"
)

// BenchmarkUnwrap is one HPKE open (one ECDH in the store) per backend.
func BenchmarkUnwrap(b *testing.B) {
	for _, bk := range benchBackends(b) {
		b.Run(bk.name, func(b *testing.B) {
			s := bk.open(b)
			defer s.Close()
			k, err := s.Create("bench")
			if err != nil {
				b.Fatal(err)
			}
			keystoretest.BenchmarkUnwrap(b, k)
		})
	}
}

type benchBackend struct {
	name string
	open func(b *testing.B) keystore.Store
}

func openOrFail(b *testing.B, o keystore.Options) keystore.Store {
	s, err := keystore.Open(o)
	if err != nil {
		b.Fatal(err)
	}
	return s
}
