//go:build !windows

package winver

func isWine() bool { return false }
