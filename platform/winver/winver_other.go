//go:build !windows

package winver

func wine() bool { return false }
