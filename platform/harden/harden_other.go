//go:build !linux && !windows

package harden

func apply() Report {
	return Report{Measures: []Measure{{Name: NoCoreDumps, Detail: "not implemented on this OS"}}}
}
